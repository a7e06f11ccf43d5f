// Package clusterbench measures ivsrt as a cluster: API throughput and
// participants per cluster, for the single server on SQLite and for one
// and three nodes sharing PostgreSQL and NATS, every node an `ivsrt serve`
// process of its own on 127.0.0.1.
//
// The benchmark is a test, so that it can start a throwaway PostgreSQL
// server with store/postgres/pgtest; it is skipped unless IVSRT_BENCH=1:
//
//	IVSRT_BENCH=1 go test -run TestReport -count 1 -timeout 30m -v ./bench/clusterbench
//
// It writes its report to bench/results/<YYYY-MM-DD>/cluster.md. See
// bench/README.md.
package clusterbench
