package rbl

import "github.com/prometheus/client_golang/prometheus"

var (
	budgetSentDesc = prometheus.NewDesc("rblmilter_list_daily_queries",
		"DNS queries the list's query zone sent in the last 24 hours (client lookups after the cache and de-duplication, TXT queries and health probes), the count daily_queries limits.",
		[]string{"list"}, nil)
	budgetLimitDesc = prometheus.NewDesc("rblmilter_list_daily_queries_limit",
		"The list's daily_queries: queries its zone may send in any 24 hours (0: no limit). At the limit the list is not asked (lookup outcome over_budget).",
		[]string{"list"}, nil)
)

// budgetCollector reads a Budget's counts at scrape time, so that sending
// a query costs no metric update.
type budgetCollector struct{ b *Budget }

// Describe sends the descriptors.
func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetSentDesc
	ch <- budgetLimitDesc
}

// Collect sends each configured list's count and limit; entries sharing a
// query zone show the zone's numbers.
func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.b.now()
	for _, z := range *c.b.zones.Load() {
		names, u := c.b.snapshot(z, now)
		for _, name := range names {
			ch <- prometheus.MustNewConstMetric(budgetSentDesc, prometheus.GaugeValue, float64(u.Sent), name)
			ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(u.Limit), name)
		}
	}
}
