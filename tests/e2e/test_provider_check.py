"""`qoima provider check` against the stack's real sources, run as a user runs it (issue 14 item 1):
the demo PostgreSQL and the shop MariaDB pass; a publication that misses a table, a table without a
key or replica identity, and a MariaDB row image other than FULL each fail with the fix printed, and
`qoima connector register` refuses a source that fails."""
from __future__ import annotations

import shutil
import subprocess

from model.regulation import load_all
from tests.e2e.cli import qoima


def _demo(stack):
    return next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")


def test_the_stacks_sources_are_ready(stack):
    for provider in ("demo", "shop"):
        result = qoima(stack, "provider", "check", provider)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{provider}: the source is ready for capture" in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
    demo = qoima(stack, "provider", "check", "demo").stdout
    assert "ok   server: wal_level = logical" in demo
    assert "publication qoima_demo" in demo or "covers exactly" in demo


def test_a_publication_missing_a_table_fails_with_the_fix_and_blocks_register(stack, pg):
    demo = _demo(stack)
    pg.execute(f"ALTER PUBLICATION {demo.publication_name} DROP TABLE social.appeals")
    try:
        result = qoima(stack, "provider", "check", "demo")
        assert result.returncode == 1, result.stdout
        assert "FAIL publication:" in result.stdout and 'missing "social"."appeals"' in result.stdout
        assert f"fix: ALTER PUBLICATION {demo.publication_name} SET TABLE " in result.stdout
        assert "run the fixes above as its data owner" in result.stderr
        refused = qoima(stack, "connector", "register", "demo")
        assert refused.returncode != 0 and "not registered" in refused.stderr, refused.stdout + refused.stderr
    finally:
        stack.postgres.ensure_publication(demo)
    assert qoima(stack, "provider", "check", "demo").returncode == 0


def test_a_table_without_key_or_replica_identity_fails(stack, pg, tmp_path):
    pg.execute("CREATE TABLE IF NOT EXISTS catalog.no_key (id bigint NOT NULL, note text)")
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    with (regulations / "demo.yaml").open("a", encoding="utf-8") as demo:
        demo.write("\n  - name: catalog.no_key\n    primary_key: [id]\n    columns:\n"
                   "      - {name: id, type: bigint, nullable: false}\n      - {name: note, type: text}\n")
    try:
        result = qoima(stack, "provider", "check", "demo", regulations=regulations)
        assert result.returncode == 1, result.stdout
        assert "FAIL catalog.no_key: no primary key and no replica identity" in result.stdout
        assert 'fix: ALTER TABLE "catalog"."no_key" ADD PRIMARY KEY ("id"); or ALTER TABLE "catalog"."no_key" ' \
               "REPLICA IDENTITY FULL;" in result.stdout
    finally:
        pg.execute("DROP TABLE IF EXISTS catalog.no_key")


def test_a_relation_an_underscore_in_a_captured_name_also_matches_fails(stack, pg):
    """Debezium 3.0 looks a streamed table's columns up with its name as a LIKE pattern: a table
    'typexsamples' beside 'type_samples' would stop the connector at type_samples' next change."""
    pg.execute("CREATE TABLE IF NOT EXISTS catalog.typexsamples (id bigint PRIMARY KEY)")
    try:
        result = qoima(stack, "provider", "check", "demo")
        assert result.returncode == 1, result.stdout
        assert ('FAIL catalog.type_samples: Debezium reads its columns with "catalog"."type_samples" as a LIKE '
                "pattern, which also matches catalog.typexsamples") in result.stdout
        assert "fix: rename catalog.typexsamples (or this table) at the source" in result.stdout
    finally:
        pg.execute("DROP TABLE IF EXISTS catalog.typexsamples")
    assert qoima(stack, "provider", "check", "demo").returncode == 0


def test_a_mariadb_row_image_other_than_full_fails_with_the_fix(stack):
    stack.mariadb._client("SET GLOBAL binlog_row_image = 'MINIMAL';")
    try:
        result = qoima(stack, "provider", "check", "shop")
    finally:
        stack.mariadb._client("SET GLOBAL binlog_row_image = 'FULL';")
    assert result.returncode == 1, result.stdout
    assert "FAIL server: binlog_row_image = MINIMAL, capture needs FULL" in result.stdout
    assert "fix: SET GLOBAL binlog_row_image = 'FULL';" in result.stdout


def test_an_unreachable_source_is_a_message_not_a_traceback(stack, tmp_path):
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    text = (regulations / "demo.yaml").read_text(encoding="utf-8")
    # Nothing listens on port 1; the local PostgreSQL trusts local logins, so a wrong password
    # could not be shown failing here.
    (regulations / "demo.yaml").write_text(
        text.replace('port: "${QOIMA_LOCAL_PG_PORT:-25432}"', "port: 1"), encoding="utf-8")
    result = qoima(stack, "provider", "check", "demo", regulations=regulations)
    assert result.returncode == 1, result.stdout
    assert "FAIL connection: cannot connect to postgresql 127.0.0.1:1/gosdata as qoima_capture" in result.stdout
    assert "fix: check host, port and database in the regulation" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_the_owners_script_runs_as_printed_and_leaves_a_ready_source(stack):
    """`qoima provider sql` piped into each database's own client, as its docs say; twice (idempotent)."""
    from infra.mariadb import CLIENT, _os_user
    from infra.postgres import PG_BIN

    for _ in range(2):
        script = qoima(stack, "provider", "sql", "demo")
        assert script.returncode == 0 and "\\gexec" in script.stdout
        password = (stack.s.secrets_dir / "demo-source-password").read_text().strip()
        assert password not in script.stdout
        applied = subprocess.run([str(PG_BIN / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v",
                                  f"capture_password={password}", stack.pg_admin_conninfo("gosdata")],
                                 input=script.stdout, capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
        shop = qoima(stack, "provider", "sql", "shop")
        assert shop.returncode == 0
        applied = subprocess.run([str(CLIENT), "--no-defaults", f"--socket={stack.mariadb.socket}",
                                  f"--user={_os_user()}", "--init-command=SET @capture_password = 'a-new-one'"],
                                 input=shop.stdout, capture_output=True, text=True, timeout=60)
        assert applied.returncode == 0, applied.stderr
    demo = qoima(stack, "provider", "check", "demo")
    assert demo.returncode == 0, demo.stdout
    assert "bytea" not in demo.stdout                      # REPLICA IDENTITY FULL where bytea is
    assert "max_slot_wal_keep_size = 20GB" in demo.stdout   # bounded now
    assert qoima(stack, "provider", "check", "shop").returncode == 0


def test_a_draft_from_each_live_catalog_matches_its_regulation_once_decided(stack, tmp_path):
    """`qoima regulation draft` against the stack's sources: it cannot load until every action is
    decided; decided (all kept, to test the rest), its tables, columns and keys are the ones the
    hand-written regulations of the same tables declare."""
    from model.regulation import load_regulation

    regulations = {r.provider: r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env())}
    cases = [("demo", "postgresql", stack.s.ports.postgres, "gosdata", ["population", "social", "Registry Office"],
              stack.s.secrets_dir / "demo-source-password"),
             ("shop", "mariadb", stack.s.ports.mariadb, "shop", ["shop"], stack.s.secrets_dir / "shop-source-password")]
    for provider, dbms, port, database, schemas, secret in cases:
        draft = tmp_path / f"{provider}-draft.yaml"
        made = qoima(stack, "regulation", "draft", f"{provider}2", "--dbms", dbms, "--host", stack.s.host,
                      "--port", str(port), "--database", database, "--user", regulations[provider].source.user,
                      "--password-file", str(secret), *[arg for s in schemas for arg in ("--schema", s)],
                      "-o", str(draft))
        assert made.returncode == 0, made.stderr
        text = draft.read_text(encoding="utf-8")
        assert secret.read_text().strip() not in text
        refused = qoima(stack, "regulation", "check", str(draft))
        assert refused.returncode == 1 and "].action: Input should be 'keep'" in refused.stderr, refused.stderr
        if provider == "demo":
            assert "# iin: likely iin by its name" in text and "sampled values are valid iins" in text
        decided = tmp_path / f"{provider}-decided.yaml"
        decided.write_text(text.replace("action: decide", "action: keep").replace("server_id: 5400", "server_id: 5499"),
                           encoding="utf-8")
        loaded = load_regulation(decided, stack.s.regulation_env())
        # Matched by their names at the source: the demo's quoted tables got warehouse names chosen by
        # hand, the draft derives its own (docs/regulation.md, "Names").
        expected = {(t.schema_name, t.table_name): t for t in regulations[provider].tables if t.schema_name in schemas}
        assert {(t.schema_name, t.table_name) for t in loaded.tables} == set(expected)
        for table in loaded.tables:
            hand = expected[(table.schema_name, table.table_name)]
            assert sorted((c.name, c.source_column) for c in table.columns) == \
                sorted((c.name, c.source_column) for c in hand.columns), table.name
            assert table.primary_key == hand.primary_key, table.name
            if table.name != hand.name:
                assert table.name.startswith(hand.name.split(".")[0] + ".persons_main_"), table.name


def test_a_missing_signal_table_is_a_message_not_a_traceback(stack, tmp_path):
    """`qoima snapshot` against a database without the signal table (the demo regulation pointed
    at the server's `postgres` database): one line naming the refusal and the check, exit 1."""
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    demo = regulations / "demo.yaml"
    demo.write_text(demo.read_text(encoding="utf-8").replace("database: gosdata", "database: postgres", 1),
                    encoding="utf-8")
    result = qoima(stack, "snapshot", "demo", "population.persons", "--now", regulations=regulations)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "qoima: the PostgreSQL source refused a statement" in result.stderr
    assert 'relation "public.qoima_signal" does not exist' in result.stderr and "qoima provider check" in result.stderr


def test_personal_data_read_without_a_declared_legal_basis_is_a_warning_with_the_fix(stack, tmp_path):
    declared = qoima(stack, "provider", "check", "demo")
    assert declared.returncode == 0 and "declares no legal basis" not in declared.stdout
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    text = (regulations / "demo.yaml").read_text(encoding="utf-8")
    start = text.index("\npersonal_data:")
    end = text.index("\n", text.index("purpose:", start))
    (regulations / "demo.yaml").write_text(text[:start] + text[end:], encoding="utf-8")
    result = qoima(stack, "provider", "check", "demo", regulations=regulations)
    # Capture may go on (each read is still recorded), but the operator is told what to add.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARN demo: its tables hold personal data, but the regulation declares no legal basis" in result.stdout
    assert "fix: add `personal_data: {legal_basis: ..., purpose: ...}`" in result.stdout
