//go:build integration && linux

package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The test clients. Listed and clean ones come in both address families;
// their roles are fixed by the zone files below.
const (
	listedIPv4    = "192.0.2.66"    // bl.test 127.0.0.2 with a TXT reason
	listedIPv6    = "2001:db8::66"  // bl.test 127.0.0.2 (IPv6 dataset)
	cleanIPv4     = "198.51.100.10" // in no list (err.test answers its error code for everyone)
	cleanIPv6     = "2001:db8::10"
	allowedIPv4   = "192.0.2.77"    // in bl.test (+1) and wl.test (-2): allowlisted
	aggListedIPv4 = "192.0.2.88"    // agg.test answers 127.0.0.2 and 127.0.0.4; 127.0.0.4 counts
	aggCleanIPv4  = "192.0.2.89"    // agg.test answers only 127.0.0.2, which does not count
	lateListIPv4  = "198.51.100.99" // listed while the test runs
	listedLocal   = "127.0.0.66"    // bl.test; a real source address on the host's loopback
	blTXT         = "Listed by bl.test, see https://bl.test.invalid/lookup?"
)

// The data of bl.test, which agg.test serves too.
const (
	bl4 = ":127.0.0.2:" + blTXT + "$\n127.0.0.2\n" + listedIPv4 + "\n" + allowedIPv4 + "\n" + listedLocal + "\n"
	bl6 = ":127.0.0.2:" + blTXT + "$\n::ffff:7f00:2\n" + listedIPv6 + "\n"
)

// The zone files rbldnsd serves: name -> file, dataset type and content.
var testZones = []struct {
	zone, typ, file, content string
}{
	// RFC 5782 test points (127.0.0.2 and ::ffff:127.0.0.2) are listed
	// and 127.0.0.1 is not, as in every real list.
	{"bl.test", "ip4set", "bl4", bl4},
	{"bl.test", "ip6trie", "bl6", bl6},
	{"wl.test", "ip4set", "wl4", ":127.0.10.2:Allowlisted by wl.test\n127.0.0.2\n" + allowedIPv4 + "\n"},
	// agg.test is an aggregate list, built like zen.spamhaus.org from
	// several lists: rbldnsd answers with the records of every dataset,
	// so it returns several A records at once. Its data sits in the
	// documentation ranges, as in every lab setup: bl.test's files, two
	// parts of its own, and a policy part (like Spamhaus PBL) that lists
	// TEST-NET-1, TEST-NET-2 and 2001:db8::/32 whole. The health monitor's
	// canaries in those ranges are listed every round; it must stay
	// counted.
	{"agg.test", "ip4set", "agg-a", ":127.0.0.2:Aggregate part A\n127.0.0.2\n" + aggListedIPv4 + "\n" + aggCleanIPv4 + "\n"},
	{"agg.test", "ip4set", "agg-b", ":127.0.0.4:Aggregate part B\n127.0.0.2\n" + aggListedIPv4 + "\n"},
	{"agg.test", "ip4set", "bl4", bl4},
	{"agg.test", "ip6trie", "bl6", bl6},
	{"agg.test", "ip4trie", "agg-pbl4", ":127.0.0.10:Aggregate policy part\n192.0.2.0/24\n198.51.100.0/24\n"},
	{"agg.test", "ip6trie", "agg-pbl6", ":127.0.0.11:Aggregate policy part\n2001:db8::/32\n"},
	// The policy-level tests' lists: one strong enough to reject alone,
	// and an AuthBL-like list of addresses bots log in from.
	{"strong.test", "ip4set", "strong4", ":127.0.0.2:" + strongTXT + "\n127.0.0.2\n" + strongIPv4 + "\n"},
	{"authbl.test", "ip4set", "authbl4", ":127.0.0.2:" + authblTXT + "\n127.0.0.2\n" + botIPv4 + "\n"},
	// An operator's "you may not query us" answer, for every address.
	{"err.test", "ip4trie", "err4", ":127.255.255.254:Error: query refused\n0.0.0.0/0\n"},
	{"err.test", "ip6trie", "err6", ":127.255.255.254:Error: query refused\n::/0\n"},
	// A lapsed list's domain: a wildcard that answers "listed" for every
	// name, 127.0.0.1 included.
	{"wild.test", "ip4trie", "wild4", ":127.0.0.2:Listed: the domain has lapsed\n0.0.0.0/0\n"},
	{"wild.test", "ip6trie", "wild6", ":127.0.0.2:Listed: the domain has lapsed\n::/0\n"},
	// Domain lists (RFC 5782 §2.3) as rbldnsd dnset zones, with the
	// RFC 5782 §5 test entry "test" (and not "invalid"): a DBL-like zone
	// with its 127.0.1.x codes and its error code, and a ZRD-like one.
	{"dbl.test", "dnset", "dbl", ":127.0.1.2:" + dblTXT + "\ntest\n" + listedHelo + "\n" + listedSenderDomain + "\n" +
		listedClientName + "\n" + clientName(listedNameIPv4) + "\n" + listedDomain + "\n" +
		abusedDomain + " :127.0.1.102:Abused legitimate domain\n" + dblErrorDomain + " :127.0.1.255:Error: IP queries prohibited\n"},
	{"zrd.test", "dnset", "zrd", ":127.0.2.24:" + zrdTXT + "\ntest\n" + youngDomain + " :127.0.2.2:" + zrdTXT + "\n" +
		zrdErrorDomain + " :127.0.2.255:Error: IP queries prohibited\n"},
}

// The names the domain zones list, and their roles.
const (
	listedHelo         = "listed-helo.example"   // dbl.test 127.0.1.2: a HELO name
	listedSenderDomain = "listed-sender.example" // dbl.test 127.0.1.2: a sender domain
	listedClientName   = "listed-client.example" // dbl.test 127.0.1.2: a client name (Postfix XCLIENT NAME=)
	listedDomain       = "spammer.example"       // dbl.test 127.0.1.2: a registered domain, whose subdomains count through it
	abusedDomain       = "abused.example"        // dbl.test 127.0.1.102: abused, does not count
	dblErrorDomain     = "dbl-error.example"     // dbl.test 127.0.1.255: DBL's error code
	youngDomain        = "young.example"         // zrd.test 127.0.2.2: first seen two hours ago
	zrdErrorDomain     = "zrd-error.example"     // zrd.test 127.0.2.255: ZRD's error code
	// listedNameIPv4 is a client Sendmail knows by a name dbl.test lists.
	listedNameIPv4 = "198.51.100.20"
	dblTXT         = "Listed by the test DBL"
	zrdTXT         = "Young domain (test ZRD)"
)

// dnsServer is a DNS server the test asks directly (rbldnsd, or a
// resolver in front of it).
type dnsServer struct {
	addr string
	dial dialer
}

// rbldnsd is a running rbldnsd serving testZones over UDP.
type rbldnsd struct {
	*process
	dnsServer
	dir string
}

// startRbldnsd writes the zones into dir/zones and serves them on
// 127.0.0.1:port (inside the network namespace when wrap enters one). It
// rereads changed files every second (-c 1s) and runs as the rbldns user.
func startRbldnsd(t testing.TB, dir string, port int, d dialer, wrap ...string) *rbldnsd {
	t.Helper()
	bin := requireCommands(t, "rbldnsd")["rbldnsd"]
	zdir := filepath.Join(dir, "zones")
	if err := os.MkdirAll(zdir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{bin, "-n", "-u", "rbldns", "-b", fmt.Sprintf("127.0.0.1/%d", port), "-w", zdir, "-c", "1s", "-t", "60"}
	for _, z := range testZones {
		writeFile(t, filepath.Join(zdir, z.file), z.content)
		args = append(args, z.zone+":"+z.typ+":"+z.file)
	}
	argv := append(append([]string{}, wrap...), args...)
	r := &rbldnsd{
		process:   startProcess(t, "rbldnsd", filepath.Join(dir, "rbldnsd.log"), nil, argv...),
		dnsServer: dnsServer{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dial: d},
		dir:       zdir,
	}
	waitFor(t, startTimeout, "rbldnsd to answer", func() error {
		if r.exited() {
			t.Fatalf("%v", r.exitError())
		}
		return r.expect("127.0.0.2", "bl.test", "127.0.0.2")
	})
	return r
}

// query asks the server for the A records of ip in zone.
func (r dnsServer) query(ip, zone string) ([]string, error) {
	name, err := dns.ReverseAddr(ip)
	if err != nil {
		return nil, err
	}
	name = strings.TrimSuffix(name, "in-addr.arpa.")
	name = strings.TrimSuffix(name, "ip6.arpa.")
	m := new(dns.Msg)
	m.SetQuestion(name+zone+".", dns.TypeA)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := r.dial.dial(ctx, "udp", "", r.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	c := dns.Client{Timeout: 2 * time.Second}
	resp, _, err := c.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: conn})
	if err != nil {
		return nil, err
	}
	var got []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			got = append(got, a.A.String())
		}
	}
	slices.Sort(got)
	return got, nil
}

// expect checks that the server answers exactly codes for ip in zone.
func (r dnsServer) expect(ip, zone string, codes ...string) error {
	got, err := r.query(ip, zone)
	if err != nil {
		return err
	}
	slices.Sort(codes)
	if !slices.Equal(got, codes) {
		return fmt.Errorf("%s answers %v for %s in %s, want %v", r.addr, got, ip, zone, codes)
	}
	return nil
}

// list adds ip to file (a testZones file name) and waits until rbldnsd,
// which rereads changed files by itself, serves it with codes.
func (r *rbldnsd) list(t testing.TB, file, zone, ip string, codes ...string) {
	t.Helper()
	path := filepath.Join(r.dir, file)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintln(f, ip); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// rbldnsd compares modification times in whole seconds; make sure this
	// change is seen even when the file was written within the same second.
	future := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("rbldnsd to reload %s with %s", file, ip), func() error {
		return r.expect(ip, zone, codes...)
	})
}
