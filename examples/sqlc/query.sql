-- name: CreateAccount :one
INSERT INTO accounts (owner, balance) VALUES ($1, $2) RETURNING *;

-- name: GetAccount :one
SELECT * FROM accounts WHERE id = $1;

-- name: AddToBalance :one
UPDATE accounts SET balance = balance + sqlc.arg(delta) WHERE id = sqlc.arg(id) RETURNING balance;

-- name: CreateTransfer :one
INSERT INTO transfers (from_id, to_id, amount) VALUES ($1, $2, $3) RETURNING *;

-- name: ListTransfers :many
SELECT * FROM transfers WHERE from_id = $1 OR to_id = $1 ORDER BY id;

-- name: TotalBalance :one
SELECT coalesce(sum(balance), 0)::bigint AS total FROM accounts;
