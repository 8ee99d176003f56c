# The two commands of the README are `make run` and `make test`; the rest are conveniences.
.PHONY: setup run test unit down wipe bench

setup:
	bash infra/setup.sh

run: setup
	.venv/bin/qoima up

test: setup
	.venv/bin/pytest

unit: setup
	.venv/bin/pytest tests/unit

down:
	.venv/bin/qoima down

wipe:
	.venv/bin/qoima down --wipe
