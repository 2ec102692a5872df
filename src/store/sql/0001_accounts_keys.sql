-- Accounts and their access keys (the AccessKeyId / AccessKeySecret pairs the
-- Alibaba clients sign with). A key belongs to exactly one account; deleting an
-- account deletes its keys.
CREATE TABLE accounts (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
	created_ms INTEGER NOT NULL
);

CREATE TABLE access_keys (
	akid       TEXT    NOT NULL UNIQUE CHECK (length(akid) BETWEEN 1 AND 128),
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	secret     TEXT    NOT NULL CHECK (length(secret) BETWEEN 1 AND 128),
	created_ms INTEGER NOT NULL
);

-- store_key_each lists keys by account, then creation.
CREATE INDEX access_keys_by_account ON access_keys(account_id, created_ms);
