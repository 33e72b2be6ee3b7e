// Command rblmilter is a milter that rejects SMTP clients listed on DNS
// blocklists at connect time.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], systemEnvironment()))
}
