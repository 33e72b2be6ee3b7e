package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processReport is the target's resource use over the measured run, read
// from /proc: the "how much CPU per connection" figure admins ask for.
type processReport struct {
	PID           int     `json:"pid"`
	CPUSeconds    float64 `json:"cpu_s"`
	CPUPerSession float64 `json:"cpu_us_per_session"`
	RSSBeforeKiB  uint64  `json:"rss_before_kib"`
	RSSAfterKiB   uint64  `json:"rss_after_kib"`
	ThreadsBefore int     `json:"threads_before"`
	ThreadsAfter  int     `json:"threads_after"`
}

// procSample is one reading of a process.
type procSample struct {
	cpu     time.Duration
	rssKiB  uint64
	threads int
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// readProc samples pid from the proc file system rooted at procRoot.
func readProc(procRoot string, pid int) (procSample, error) {
	dir := procRoot + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return procSample{}, fmt.Errorf("-pid %d: %w", pid, err)
	}
	// The command name in parentheses may hold spaces; fields follow
	// the last ")". utime and stime are fields 14 and 15 (1-based).
	rest := string(stat)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return procSample{}, fmt.Errorf("-pid %d: cannot parse %s/stat", pid, dir)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procSample{}, fmt.Errorf("-pid %d: cannot parse cpu times in %s/stat", pid, dir)
	}
	s := procSample{cpu: time.Duration(utime+stime) * clockTick}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return procSample{}, fmt.Errorf("-pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
		switch k {
		case "VmRSS":
			s.rssKiB, _ = strconv.ParseUint(v, 10, 64)
		case "Threads":
			s.threads, _ = strconv.Atoi(v)
		}
	}
	return s, nil
}

func processDelta(pid int, before, after procSample, sessions uint64) *processReport {
	rep := &processReport{
		PID:           pid,
		CPUSeconds:    (after.cpu - before.cpu).Seconds(),
		RSSBeforeKiB:  before.rssKiB,
		RSSAfterKiB:   after.rssKiB,
		ThreadsBefore: before.threads,
		ThreadsAfter:  after.threads,
	}
	if sessions > 0 {
		rep.CPUPerSession = rep.CPUSeconds * 1e6 / float64(sessions)
	}
	return rep
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileReport says where the target's CPU profile went.
type profileReport struct {
	URL   string `json:"url"`
	File  string `json:"file,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Error string `json:"error,omitempty"`
}

// profileURL turns what an admin passes (the pprof index, the host root or
// the profile URL itself) into the CPU profile URL for seconds.
func profileURL(base string, seconds int) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("-pprof %q: want a URL like http://127.0.0.1:9890/debug/pprof/", base)
	}
	switch {
	case strings.HasSuffix(u.Path, "/profile"):
	case strings.Contains(u.Path, "/debug/pprof"):
		u.Path = strings.TrimSuffix(u.Path, "/") + "/profile"
	default:
		u.Path = strings.TrimSuffix(u.Path, "/") + "/debug/pprof/profile"
	}
	q := u.Query()
	q.Set("seconds", strconv.Itoa(seconds))
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// fetchProfile downloads a CPU profile to file. It blocks for the profile's
// duration, which the target decides.
func fetchProfile(ctx context.Context, client *http.Client, profURL, file string) *profileReport {
	rep := &profileReport{URL: profURL}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, profURL, nil)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	resp, err := client.Do(req)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		rep.Error = fmt.Sprintf("HTTP %s: %s", resp.Status, strings.TrimSpace(string(body)))
		return rep
	}
	f, err := os.Create(file)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.File, rep.Bytes = file, n
	return rep
}

// defaultMetrics are the Prometheus series a soak test watches: both come
// with client_golang's Go and process collectors.
var defaultMetrics = []string{"go_goroutines", "process_resident_memory_bytes"}

// metricsReport is the target's own metrics before the run, right after
// it, and once it has settled: goroutines and memory must come back to
// the baseline when the load stops.
type metricsReport struct {
	URL     string             `json:"url"`
	Before  map[string]float64 `json:"before"`
	After   map[string]float64 `json:"after"`
	Settled map[string]float64 `json:"settled,omitempty"`
	// SettleSeconds is how long go_goroutines took to return to its
	// value before the run; absent if it did not within -settle.
	SettleSeconds *float64 `json:"settle_s,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// scrapeMetrics reads the named series from a Prometheus text endpoint.
// A labelled series is keyed by its full name with labels.
func scrapeMetrics(ctx context.Context, client *http.Client, metricsURL string, names []string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %s", metricsURL, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := cutLast(line)
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(series, "{")
		for _, n := range names {
			if n == name {
				if v, err := strconv.ParseFloat(value, 64); err == nil {
					out[series] = v
				}
			}
		}
	}
	for _, n := range names {
		if _, ok := out[n]; !ok && !hasPrefixKey(out, n+"{") {
			return out, fmt.Errorf("%s has no metric %s", metricsURL, n)
		}
	}
	return out, nil
}

// cutLast splits "series value" (an optional timestamp after the value is
// not produced by client_golang and not handled).
func cutLast(line string) (series, value string, ok bool) {
	i := strings.LastIndexByte(line, ' ')
	if i <= 0 {
		return "", "", false
	}
	return strings.TrimSpace(line[:i]), line[i+1:], true
}

func hasPrefixKey(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// settleMetrics polls until go_goroutines is back at its value in before
// or the settle time is over.
func settleMetrics(ctx context.Context, client *http.Client, rep *metricsReport, names []string, settle time.Duration, now func() time.Time) {
	baseline, ok := rep.Before["go_goroutines"]
	if !ok || settle <= 0 {
		return
	}
	start := now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		m, err := scrapeMetrics(ctx, client, rep.URL, names)
		if err == nil {
			rep.Settled = m
			if m["go_goroutines"] <= baseline {
				s := now().Sub(start).Seconds()
				rep.SettleSeconds = &s
				return
			}
		}
		if now().Sub(start) >= settle {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
