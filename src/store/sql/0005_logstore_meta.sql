-- Log Service projects and logstores (issue 10, docs/logstore.md). A project
-- belongs to one account; its name is unique across accounts because the Host
-- header ("<project>.<sls-domain>") is all a request says about it. Logstore
-- ids never repeat (AUTOINCREMENT): they name the data directory under
-- --logs-dir, and a new logstore must never find an old one's files.
CREATE TABLE sls_projects (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_s INTEGER NOT NULL,
	modified_s INTEGER NOT NULL
);
CREATE INDEX sls_projects_account ON sls_projects(account_id, name);

CREATE TABLE sls_logstores (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	project_id INTEGER NOT NULL REFERENCES sls_projects(id) ON DELETE CASCADE,
	name TEXT NOT NULL,
	ttl INTEGER NOT NULL,
	shard_count INTEGER NOT NULL,
	created_s INTEGER NOT NULL,
	modified_s INTEGER NOT NULL,
	UNIQUE (project_id, name)
);
