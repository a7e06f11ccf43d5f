// Package clusterbench measures ivsrt as a cluster: API throughput and
// participants per cluster, for the single server on SQLite and for one
// and three nodes sharing PostgreSQL and NATS, and one stage's fan-out on
// 1, 2 and 3 nodes (its host the origin, the other nodes its edges);
// every node an `ivsrt serve` process of its own on 127.0.0.1.
//
// The benchmark is a test, so that it can start a throwaway PostgreSQL
// server with store/postgres/pgtest; it is skipped unless IVSRT_BENCH=1:
//
//	IVSRT_BENCH=1 go test -run TestReport -count 1 -timeout 30m -v ./bench/clusterbench
//
// It writes its report to bench/results/<YYYY-MM-DD>/cluster.md. The
// fan-out is a test of its own, writing cluster-fanout.md:
//
//	IVSRT_BENCH=1 go test -run TestFanout -count 1 -timeout 30m -v ./bench/clusterbench
//
// See bench/README.md.
package clusterbench
