// Package storecore holds what store/sqlite and store/postgres decide alike:
// what recording a participant event does to a stage's session, what a
// change of a participant's recording may be and tells, the checks
// of the delivery queues, the keyset cursors of list pages, and the JSON
// documents both keep in their tables. Each store keeps its own SQL and
// calls these, so that the two cannot drift apart.
package storecore
