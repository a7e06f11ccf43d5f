package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// closeConn closes conn, waiting a little for the server to hear of it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
