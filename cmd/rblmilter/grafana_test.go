package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rblmilter/rblmilter/rbl"
	"github.com/rblmilter/rblmilter/rbl/rbltest"
)

const dashboardPath = "../../contrib/grafana/rblmilter.json"

// dashboard is the part of Grafana's dashboard JSON model the test reads.
type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

var metricName = regexp.MustCompile(`\brblmilter_[a-zA-Z0-9_]+`)

// readDashboard checks that the dashboard is a dashboard Grafana loads as
// shipped (imported or provisioned: the data source is a variable, not an
// import-time input) and returns every rblmilter metric its queries use.
func readDashboard(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 36 || len(d.Panels) == 0 {
		t.Errorf("title %q uid %q schemaVersion %d, %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	if strings.Contains(string(raw), "${DS_") {
		t.Error("the dashboard uses an import-time ${DS_...} input, which file provisioning cannot fill; use the $datasource variable")
	}
	var names []string
	add := func(text string) {
		for _, n := range metricName.FindAllString(text, -1) {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	hasDatasourceVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			hasDatasourceVar = hasDatasourceVar || v.Name == "datasource" && string(v.Query) == `"prometheus"`
		case "query":
			if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
				t.Errorf("variable %s: data source %+v", v.Name, v.Datasource)
			}
			add(string(v.Query) + v.Definition)
		}
	}
	if !hasDatasourceVar {
		t.Error(`no "datasource" variable of type datasource for prometheus`)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if p.Type == "" || p.Title == "" || p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: type %q gridPos %+v", p.ID, p.Title, p.Type, p.GridPos)
		}
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %+v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: query %+v", p.Title, tg)
			}
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
				t.Errorf("panel %q: unbalanced query %s", p.Title, tg.Expr)
			}
			add(tg.Expr)
		}
	}
	return names
}

// TestGrafanaDashboardMetricsExist runs the daemon until every metric has
// a series (a listed and a clean client, an early decision, a cache hit,
// a probe round) and checks that every metric the dashboard queries is in
// its /metrics, so that renaming a metric breaks this test, not the
// dashboard; and that every exported metric is on the dashboard and in the
// metrics table of docs/operations.md.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	used := readDashboard(t)
	if len(used) < 15 {
		t.Fatalf("only %d metrics found in the dashboard: %v", len(used), used)
	}

	srv := rbltest.NewServer(t)
	for _, zone := range []string{"bl.test", "slow.test"} {
		serveTestEntries(srv, zone)
	}
	listed := mustAddr("192.0.2.1")
	srv.Set(rbl.QueryName(listed, "bl.test"), rbltest.A("127.0.0.2"))
	// slow.test answers late: bl.test's listing decides early.
	srv.Set(rbl.QueryName(listed, "slow.test"), rbltest.Delay(300*time.Millisecond))
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	path := filepath.Join(dir, "rblmilter.toml")
	text := fmt.Sprintf(`listen = "unix:%s"
resolvers = [%q]
skip = []
sites = ["bl.test=127.0.0.[2..11]", "slow.test"]

[metrics]
listen = "127.0.0.1:0"
`, sock, srv.Addr())
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startInProcess(t, path, sock)
	metrics := "http://" + d.log.addr(t, "metrics listening")
	if act := connectAs(t, "unix", sock, "192.0.2.1"); !isReject(act) {
		t.Fatalf("listed client: %+v", act)
	}
	for range 2 {
		connectAs(t, "unix", sock, "192.0.2.2")
	}

	// The first probe round runs beside the milter: wait for it.
	_, body := waitPage(t, metrics+"/metrics", nil, "rblmilter_health_probes_total{", "rblmilter_list_health_transitions_total{")
	exposed := map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		exposed[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
	}
	for _, name := range used {
		if !exposed[name] {
			t.Errorf("the dashboard queries %s, which rblmilter does not export", name)
		}
	}
	// And the other way round: every rblmilter metric is on the
	// dashboard, so a new one is not forgotten.
	for name := range exposed {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if !strings.HasPrefix(name, "rblmilter_") || slices.Contains(used, name) ||
			slices.ContainsFunc(used, func(u string) bool { return strings.HasPrefix(u, base) }) {
			continue
		}
		t.Errorf("%s is exported but not on the dashboard", name)
	}
	// And every rblmilter metric has a row in the metrics reference.
	const doc = "docs/operations.md"
	reference, err := os.ReadFile("../../" + doc)
	if err != nil {
		t.Fatalf("%s, the metrics reference: %v", doc, err)
	}
	undocumented := map[string]bool{}
	for name := range exposed {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
		if strings.HasPrefix(name, "rblmilter_") && !strings.Contains(string(reference), "\n| `"+base+"` |") {
			undocumented[base] = true
		}
	}
	for name := range undocumented {
		t.Errorf("%s is exported but %s's metrics table has no \"| `%s` |\" row", name, doc, name)
	}
}
