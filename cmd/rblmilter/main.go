// Command rblmilter is a milter that rejects SMTP clients listed on DNS
// blocklists at connect time.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], systemEnvironment()))
}
