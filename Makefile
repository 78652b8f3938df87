# Damselfly's commands:
#   make run    build everything and start a local cluster with the console (Ctrl-C stops it)
#   make test   run every test: fmt, clippy, unit + integration tests (SQLite, PostgreSQL, MariaDB),
#               the live manager against its OpenAPI document (schemathesis), browser tests
#   make bench  distribution benchmark vs curl and BitTorrent (root; quick: make bench BENCH_ARGS="-F 32 -N 4")
#   make bench-preheat one preheat job of a 512 MiB image (8 layers) to N=8 peers vs plain pulls (root; quick: BENCH_ARGS="-N 4 --layer-mib 16")
#   make bench-pull    skopeo pulls a 256 MiB image on N=4 hosts through their dfdaemons vs from the registry (root; BENCH_ARGS="-N 8")
#   make bench-single  1 GiB peer-to-peer on loopback vs curl from nginx, serving peer's RSS (quick: BENCH_ARGS="--size-mib 128")
#   make bench-scheduler one release scheduler under 1k/5k/10k simulated peers; a manager with 10k keepalives (quick: BENCH_ARGS="--peers 1000 --reps 1 --manager-peers 1000")
#   make bench-console the console's WASM size and server-side render time (clusters list, 100 clusters)
#   make screenshots   run the browser suite and refresh the README's console screenshots
# run and test install what is missing first (Debian packages, wasm-bindgen-cli, npm packages).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# rustup's toolchain builds the native binaries; Debian's rustc-web builds the browser bundle.
CARGO := $(shell PATH="$(HOME)/.cargo/bin:$$PATH" command -v cargo)
WEB_CARGO := /usr/bin/cargo
WEB_RUSTC := /usr/bin/rustc
APT_PACKAGES := rustc-web cargo-web rust-web-src rust-web-llvm lld-22 chromium zopfli docker-registry skopeo curl containerd
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock)
WASM_BINDGEN := $(HOME)/.cargo/bin/wasm-bindgen
SITE := target/site
FRONT := target/front
PEERS ?= 2
DATA_DIR ?= .damselfly
BENCH_ARGS ?=

.PHONY: screenshots bench-console help deps apt-deps wasm-bindgen npm-deps py-deps services console build run test lint unit-test e2e api-check bench bench-deps bench-single bench-preheat bench-pull bench-scheduler

help:
	@sed -n '1,12p' Makefile

deps: apt-deps wasm-bindgen npm-deps

SCHEMATHESIS_VERSION := 4.32.5
VENV := target/venv

# Python tools for tests (schemathesis), in a venv under target/.
py-deps:
	@if [ "$$($(VENV)/bin/st --version 2>/dev/null)" != "st, version $(SCHEMATHESIS_VERSION)" ]; then \
	  echo "installing schemathesis $(SCHEMATHESIS_VERSION)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q "schemathesis==$(SCHEMATHESIS_VERSION)"; \
	fi

# The integration tests use the machine's PostgreSQL, MariaDB and Redis;
# start any that is down. The tests start them too, but doing it once here is quicker.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@mysqladmin -h 127.0.0.1 -u root status >/dev/null 2>&1 || start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
	@for i in $$(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && mysqladmin -h 127.0.0.1 -u root status >/dev/null 2>&1 && exit 0; sleep 0.5; done; \
	  echo "PostgreSQL or MariaDB did not come up on 127.0.0.1"; exit 1

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

wasm-bindgen:
	@if [ "$$($(WASM_BINDGEN) --version 2>/dev/null)" != "wasm-bindgen $(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  $(CARGO) install --quiet --force wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi

npm-deps:
	@if [ ! -x end2end/node_modules/.bin/playwright ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then \
	  echo "installing npm packages"; \
	  cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error; \
	fi

# The browser bundle: console.js + console.wasm (+ .gz) + console.css in target/site/pkg.
# erase_components type-erases Leptos components (.cargo/config.toml sets it for native builds too:
# server render and hydration must agree), location-detail=none drops panic locations and
# fmt-debug=none the bodies of Debug impls (`{:?}` prints nothing in the browser): together they
# take the compressed bundle from about 870 KiB to under 600 (make bench-console).
WASM_RUSTFLAGS := --cfg erase_components -Zlocation-detail=none -Zfmt-debug=none
console: apt-deps wasm-bindgen npm-deps
	env PATH=/usr/bin:$$PATH RUSTC=$(WEB_RUSTC) RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FRONT) RUSTFLAGS="$(WASM_RUSTFLAGS)" \
	  $(WEB_CARGO) build --quiet -p console --lib --target wasm32-unknown-unknown \
	  --no-default-features --features hydrate -Zbuild-std=std,panic_abort --profile wasm-release
	mkdir -p $(SITE)/pkg
	$(WASM_BINDGEN) --target web --out-dir $(FRONT)/bindgen --out-name console \
	  $(FRONT)/wasm32-unknown-unknown/wasm-release/console.wasm
	end2end/node_modules/.bin/wasm-opt -Oz --converge --enable-bulk-memory --enable-nontrapping-float-to-int \
	  $(FRONT)/bindgen/console_bg.wasm -o $(SITE)/pkg/console_bg.wasm
	cp $(FRONT)/bindgen/console.js $(SITE)/pkg/console.js
	cp style/main.css $(SITE)/pkg/console.css
	cp style/favicon.svg $(SITE)/favicon.svg
	cp style/confirm.js $(SITE)/pkg/confirm.js
	# zopfli writes standard gzip, about 4% smaller than gzip -9; the manager serves these .gz files.
	rm -f $(SITE)/pkg/*.gz
	zopfli --i15 $(SITE)/pkg/console_bg.wasm $(SITE)/pkg/console.js $(SITE)/pkg/console.css $(SITE)/pkg/confirm.js

build: console
	$(CARGO) build --workspace --bins

run: build
	target/debug/damselfly up --peers $(PEERS) --data-dir $(DATA_DIR)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings

unit-test: services
	$(CARGO) test --workspace

# The live manager against its own OpenAPI document (no 5xx, responses match their schemas).
api-check: py-deps
	$(CARGO) build --quiet --bin manager
	end2end/openapi.sh target/debug/manager $(VENV)/bin/st 30

e2e: build
	cd end2end && npx playwright test

test: deps py-deps build lint unit-test api-check e2e

# The README's screenshots: the browser suite takes them in end2end/test-results/; these are the
# ones the README shows (the overview after a download, so its charts have traffic).
SCREENSHOTS := cluster-detail cluster-form-error clusters peers preheat-form-error preheat-job preheat-failure \
  recent-tasks roles task-clear task-graph task-graph-live tenant tokens topology
screenshots: e2e
	for s in $(SCREENSHOTS); do cp end2end/test-results/$$s.png end2end/screenshots/; done
	cp end2end/test-results/overview-traffic.png end2end/screenshots/overview.png

# One file from one origin to N peers: Damselfly vs N curls vs BitTorrent (aria2) under tc caps,
# in network namespaces (needs root). Defaults: F=256 MiB, N=8 and N=16, u_s=40, u=20 MiB/s.
# Uses ../shared/bench/baseline.py; see peer/benches/distribution/README.md.
BENCH_PACKAGES := nginx-light aria2 mktorrent opentracker curl iproute2 util-linux

bench-deps:
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

bench: bench-deps
	nice -n 10 $(CARGO) build --release --bins
	peer/benches/distribution/run.sh $(BENCH_ARGS)

# One preheat job (scope all_peers) of an image of 8 × 64 MiB random layers in docker-registry
# behind the origin's cap, to a seed peer + N=8 peers under make bench's caps, vs every host pulling
# every blob from the registry. Needs root, docker-registry and skopeo (installed here) and the release
# binaries. See peer/benches/preheat/README.md.
bench-preheat: BENCH_PACKAGES += docker-registry skopeo
bench-preheat: bench-deps
	nice -n 10 $(CARGO) build --release --bins
	python3 peer/benches/preheat/preheat.py $(BENCH_ARGS)

# skopeo (CRI-O's and podman's library) pulling an image of 4 × 64 MiB random layers on N=4 hosts at
# once, each through its own dfdaemon's registry mirror, vs straight from docker-registry, under
# make bench's caps; then a warm pull vs one direct pull alone. Needs root, docker-registry, skopeo
# and the release binaries. See peer/benches/pull/README.md.
bench-pull: BENCH_PACKAGES += docker-registry skopeo
bench-pull: bench-deps
	nice -n 10 $(CARGO) build --release -p scheduler -p peer --bins
	nice -n 10 $(CARGO) build --release -p server --bin damselfly
	python3 peer/benches/pull/pull.py $(BENCH_ARGS)

# One 1 GiB file cached on peer A, fetched by peer B on loopback, vs curl from nginx (sendfile),
# alternating, 3 reps each; then 16 children fetch it from A at once (A's peak RSS).
# See peer/benches/single/README.md.
bench-single: bench-deps
	nice -n 10 $(CARGO) build --release -p scheduler -p peer --bins
	nice -n 10 $(CARGO) build --release -p server --bin damselfly
	python3 peer/benches/single/run.py $(BENCH_ARGS)

# One release scheduler (standalone, mTLS) under 1k, 5k and 10k simulated peers from a simulator
# speaking its gRPC protocol as many hosts, one certificate and connection each: decision
# latencies, CPU, RSS, where the time goes; then one release manager (SQLite; --postgres adds
# PostgreSQL) with 10k peers keeping alive: CPU and database work per keepalive.
# See scheduler/benches/sim/README.md.
bench-scheduler:
	nice -n 10 $(CARGO) build --release -p scheduler --bin scheduler -p server --bin manager
	nice -n 10 $(CARGO) bench -p scheduler --bench sim --no-run
	$(CARGO) bench -p scheduler --bench sim -- --bin-dir $(CURDIR)/target/release $(BENCH_ARGS)

# The browser bundle's compressed size and the release manager's SSR time for the clusters list
# with 100 clusters (console/benches/console.py prints the figures and the targets).
bench-console: console
	nice -n 10 $(CARGO) build --release --bin manager
	python3 console/benches/console.py --manager target/release/manager --site $(SITE) $(BENCH_ARGS)
