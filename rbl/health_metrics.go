package rbl

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// healthMetrics are the Monitor's Prometheus metrics; nil-safe.
type healthMetrics struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	probes      *prometheus.CounterVec
	// shown are the list names the state gauge has series for.
	shown map[string]bool
}

func newHealthMetrics(reg prometheus.Registerer) (*healthMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	h := &healthMetrics{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rblmilter_list_health_state",
			Help: "List health: 1 for the list's current state (unknown, healthy, degraded, unhealthy, unmonitored), 0 for the others. Unhealthy lists are not counted.",
		}, []string{"list", "state"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_list_health_transitions_total",
			Help: "List health changes, by list and the state entered.",
		}, []string{"list", "state"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rblmilter_health_probes_total",
			Help: "Health probe queries (RFC 5782 test entries and canary addresses), by list and raw outcome.",
		}, []string{"list", "outcome"}),
		shown: map[string]bool{},
	}
	for _, c := range []prometheus.Collector{h.state, h.transitions, h.probes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("rbl: health metrics: %w", err)
		}
	}
	return h, nil
}

// sync makes the state gauge show exactly the lists of zones.
func (h *healthMetrics) sync(zones []*zoneHealth) {
	if h == nil {
		return
	}
	now := map[string]bool{}
	for _, z := range zones {
		for _, name := range z.names {
			now[name] = true
		}
	}
	for name := range h.shown {
		if !now[name] {
			h.state.DeletePartialMatch(prometheus.Labels{"list": name})
		}
	}
	h.shown = now
	for _, z := range zones {
		h.set(z)
	}
}

func (h *healthMetrics) set(z *zoneHealth) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		for s, label := range healthStateNames {
			v := 0.0
			if HealthState(s) == z.state {
				v = 1
			}
			h.state.WithLabelValues(name, label).Set(v)
		}
	}
}

func (h *healthMetrics) transitioned(z *zoneHealth) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		h.transitions.WithLabelValues(name, z.state.String()).Inc()
	}
}

func (h *healthMetrics) probed(z *zoneHealth, o Outcome) {
	if h == nil {
		return
	}
	for _, name := range z.names {
		h.probes.WithLabelValues(name, o.String()).Inc()
	}
}
