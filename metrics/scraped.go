package metrics

import "github.com/prometheus/client_golang/prometheus"

// scraped reports what other packages count, read at each scrape.
type scraped struct{ r *Registry }

var (
	descStages        = prometheus.NewDesc("ivsrt_stages_active", "Stages with a live session on this server.", nil, nil)
	descParticipants  = prometheus.NewDesc("ivsrt_participants_connected", "Participants connected to this server.", nil, nil)
	descPublishers    = prometheus.NewDesc("ivsrt_publishers", "Participants publishing to this server.", nil, nil)
	descSubscriptions = prometheus.NewDesc("ivsrt_subscriptions", "Subscriptions served: one per subscriber and publisher it receives.", nil, nil)
	descEdgePulls     = prometheus.NewDesc("ivsrt_edge_pulls", "Publications this node pulls, as an edge, from the nodes hosting their stages.", nil, nil)
	descEdgeSubs      = prometheus.NewDesc("ivsrt_edge_subscriptions", "Subscriptions this node serves as an edge, from its pulls (in ivsrt_subscriptions too).", nil, nil)
	descEdgeOpened    = prometheus.NewDesc("ivsrt_edge_pulls_opened_total", "Pulls this node opened as an edge.", nil, nil)
	descFeedsOut      = prometheus.NewDesc("ivsrt_feeds_out", "Feeds of publications here that other nodes pull (edges and replicas).", nil, nil)

	descPacketsIn  = prometheus.NewDesc("ivsrt_media_received_packets_total", "RTP packets received from publishers, and on an edge from the nodes it pulls from.", nil, nil)
	descBytesIn    = prometheus.NewDesc("ivsrt_media_received_bytes_total", "RTP bytes received from publishers.", nil, nil)
	descPacketsOut = prometheus.NewDesc("ivsrt_media_forwarded_packets_total", "RTP packets sent to subscribers, retransmissions included.", nil, nil)
	descBytesOut   = prometheus.NewDesc("ivsrt_media_forwarded_bytes_total", "SRTP bytes sent to subscribers, retransmissions included.", nil, nil)
	descDropped    = prometheus.NewDesc("ivsrt_media_dropped_packets_total",
		"Packets not sent to a subscriber, by reason: queue_full (the subscriber fell behind), no_keyframe (it waited for a keyframe to start from), socket (the socket's send queue was full).",
		[]string{"reason"}, nil)
	descRetransmitted = prometheus.NewDesc("ivsrt_media_retransmitted_packets_total", "Packets sent again for subscribers' NACKs.", nil, nil)
	descResendRefused = prometheus.NewDesc("ivsrt_media_retransmissions_refused_total",
		"Packets subscribers' NACKs asked for that were not sent again, by reason: repeated (sent again less than a round trip before), budget (the subscriber's retransmissions had reached its stream's own rate).",
		[]string{"reason"}, nil)
	descNACKs         = prometheus.NewDesc("ivsrt_media_nacks_received_total", "NACK messages received from subscribers.", nil, nil)
	descKeyframeIn    = prometheus.NewDesc("ivsrt_media_keyframe_requests_received_total", "Keyframe requests (PLI, FIR) received from subscribers.", nil, nil)
	descKeyframeOut   = prometheus.NewDesc("ivsrt_media_keyframe_requests_sent_total", "Keyframe requests (PLI) sent to publishers.", nil, nil)
	descPadding       = prometheus.NewDesc("ivsrt_media_padding_packets_total", "Packets sent to probe subscribers' bandwidth (copies in their retransmission streams).", nil, nil)
	descLayerSwitches = prometheus.NewDesc("ivsrt_media_layer_switches_total", "Subscribers moved to another simulcast layer.", nil, nil)

	descTURNAllocations  = prometheus.NewDesc("ivsrt_turn_allocations", "TURN allocations the embedded TURN server holds.", nil, nil)
	descTURNParticipants = prometheus.NewDesc("ivsrt_turn_participants", "Participants holding TURN allocations: relayed participants.", nil, nil)
	descTURNRefused      = prometheus.NewDesc("ivsrt_turn_refused_total",
		"TURN requests refused, by reason: credentials (wrong, forged or expired), quota (--turn-max-allocations).", []string{"reason"}, nil)

	descSinkPending   = prometheus.NewDesc("ivsrt_event_sink_pending", "Events in a sink's queue, not delivered yet.", []string{"sink", "kind"}, nil)
	descSinkInFlight  = prometheus.NewDesc("ivsrt_event_sink_in_flight", "Events being delivered to a sink.", []string{"sink", "kind"}, nil)
	descSinkDelivered = prometheus.NewDesc("ivsrt_event_sink_delivered_total", "Events a sink's receiver took, since this process started relaying.", []string{"sink", "kind"}, nil)
	descSinkFailed    = prometheus.NewDesc("ivsrt_event_sink_failed_tries_total", "Failed tries to deliver to a sink (each is retried until it becomes a dead letter).", []string{"sink", "kind"}, nil)
	descSinkDead      = prometheus.NewDesc("ivsrt_event_sink_dead_letters_total", "Events a sink gave up on, kept as dead letters.", []string{"sink", "kind"}, nil)
	descSinkLastOK    = prometheus.NewDesc("ivsrt_event_sink_last_delivery_timestamp_seconds", "When a sink last delivered an event (Unix time); absent before the first.", []string{"sink", "kind"}, nil)
)

func (scraped) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStages, descParticipants, descPublishers, descSubscriptions,
		descEdgePulls, descEdgeSubs, descEdgeOpened, descFeedsOut,
		descPacketsIn, descBytesIn, descPacketsOut, descBytesOut, descDropped, descRetransmitted, descResendRefused, descNACKs,
		descKeyframeIn, descKeyframeOut, descPadding, descLayerSwitches, descTURNAllocations, descTURNParticipants, descTURNRefused, descSinkPending, descSinkInFlight, descSinkDelivered, descSinkFailed,
		descSinkDead, descSinkLastOK} {
		ch <- d
	}
}

func (s scraped) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	if m := s.r.media; m != nil {
		st := m.MediaStats()
		gauge(descStages, float64(st.Stages))
		gauge(descParticipants, float64(st.Participants))
		gauge(descPublishers, float64(st.Publishers))
		gauge(descSubscriptions, float64(st.Subscriptions))
		gauge(descEdgePulls, float64(st.EdgePulls))
		gauge(descEdgeSubs, float64(st.EdgeSubscriptions))
		counter(descEdgeOpened, st.EdgePullsOpened)
		gauge(descFeedsOut, float64(st.FeedsOut))
		counter(descPacketsIn, st.PacketsIn)
		counter(descBytesIn, st.BytesIn)
		counter(descPacketsOut, st.PacketsOut)
		counter(descBytesOut, st.BytesOut)
		counter(descDropped, st.DroppedQueueFull, "queue_full")
		counter(descDropped, st.DroppedWaitingKeyframe, "no_keyframe")
		counter(descDropped, st.DroppedSocket, "socket")
		counter(descRetransmitted, st.Retransmitted)
		counter(descResendRefused, st.ResendRepeated, "repeated")
		counter(descResendRefused, st.ResendOverBudget, "budget")
		counter(descNACKs, st.NACKs)
		counter(descPadding, st.Padding)
		counter(descLayerSwitches, st.LayerSwitches)
		counter(descKeyframeIn, st.KeyframeRequestsIn)
		counter(descKeyframeOut, st.KeyframeRequestsOut)
	}
	if t := s.r.turn; t != nil {
		st := t.TURNStats()
		gauge(descTURNAllocations, float64(st.Allocations))
		gauge(descTURNParticipants, float64(st.Participants))
		counter(descTURNRefused, st.RefusedAuth, "credentials")
		counter(descTURNRefused, st.QuotaRefusals, "quota")
	}
	if sinks := s.r.sinks; sinks != nil {
		for _, st := range sinks.Status() {
			gauge(descSinkPending, float64(st.Pending), st.Name, st.Kind)
			gauge(descSinkInFlight, float64(st.InFlight), st.Name, st.Kind)
			counter(descSinkDelivered, uint64(st.Delivered), st.Name, st.Kind)
			counter(descSinkFailed, uint64(st.Failed), st.Name, st.Kind)
			counter(descSinkDead, uint64(st.DeadLettered), st.Name, st.Kind)
			if !st.LastDeliveredAt.IsZero() {
				gauge(descSinkLastOK, float64(st.LastDeliveredAt.UnixNano())/1e9, st.Name, st.Kind)
			}
		}
	}
}
