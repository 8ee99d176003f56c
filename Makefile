# The two commands of the README are `make run` and `make test`; the rest are conveniences.
.PHONY: setup run test unit down wipe bench

setup:
	bash infra/setup.sh

run: setup
	.venv/bin/qoima up

# The layering contracts (pyproject.toml, [tool.importlinter]) first: they take a second.
test: setup
	.venv/bin/lint-imports --no-cache
	.venv/bin/pytest

unit: setup
	.venv/bin/lint-imports --no-cache
	.venv/bin/pytest tests/unit

down:
	.venv/bin/qoima down

wipe:
	.venv/bin/qoima down --wipe
