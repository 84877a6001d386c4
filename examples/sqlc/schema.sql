CREATE TABLE accounts (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner   text   NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0)
);

CREATE TABLE transfers (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_id    bigint      NOT NULL REFERENCES accounts (id),
    to_id      bigint      NOT NULL REFERENCES accounts (id),
    amount     bigint      NOT NULL CHECK (amount > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
