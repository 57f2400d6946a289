#!/usr/bin/env bash
# bench/run.sh — wherehouse's benchmark; `make bench` runs it.
#
# Measures, side by side with a plain mosquitto in the same run:
#   1. Go micro-benchmarks (go test -bench).
#   2. Durably stored messages/s through the embedded broker (QoS 1 acks),
#      checked against wherehouse_messages_stored_total.
#   3. The same while the HTTP API is queried in a loop.
#   4. mosquitto's QoS 1 relay ceiling: deliveries/s to one subscriber.
#   5. wherehouse behind that mosquitto (--broker): stored/s as % of the ceiling.
#   6. Query latency on a month of one device, RSS, startup time.
#   7. The web app in headless Chromium.
#   8. History at scale (bench/history.sh): `wherehouse import` of a
#      generated Recorder store of 1,000,000 and BENCH_HISTORY_POINTS points,
#      bytes per point against the .rec files, RSS while serving, a month
#      query against a Recorder-style .rec scan, bbox + time queries.
# Numbers are printed, never asserted: a missed target does not fail the run.
# Everything listens on 127.0.0.1 only; data lives in a temporary directory
# that is removed at the end; logs and the summary are kept (path printed).
#
# Settings (environment):
#   BENCH_PUBLISHERS     publisher connections               (10)
#   BENCH_MESSAGES       messages per publisher              (20000)
#   BENCH_MONTH_POINTS   points loaded into the month device (100000)
#   BENCH_QUERY_WORKERS  HTTP query loops during step 3      (1)
#   BROWSER_POINTS       points in the browser's year device (1051200)
#   BENCH_BROWSER_PEOPLE people on the browser's live map    (500)
#   BENCH_GO             0 skips step 1                      (1)
#   BENCH_HISTORY        0 skips step 8                      (1)
#   BENCH_HISTORY_POINTS points of step 8's scale store      (10000000; 0 skips that part)
#   BENCH_HISTORY_DEVICES devices of step 8's scale store    (100)
#   BENCH_ONLY           history: run only step 8 (and the build and summary)
#   BENCH_GOFLAGS        extra go test flags, e.g. -benchtime=2s
#   BENCH_MOSQ_INFLIGHT  mosquitto max_inflight_messages     (unset: mosquitto's default, 20)
#   BENCH_RESULTS        where logs and summary go           ($TMPDIR/wherehouse-bench-<time>)
#   BENCH_WHEREHOUSE_BIN use this wherehouse binary instead of building one
#   MOSQUITTO            mosquitto binary                    (mosquitto on PATH, /usr/sbin/mosquitto)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PUBLISHERS=${BENCH_PUBLISHERS:-10}
MESSAGES=${BENCH_MESSAGES:-20000}
MONTH_POINTS=${BENCH_MONTH_POINTS:-100000}
QUERY_WORKERS=${BENCH_QUERY_WORKERS:-1}
BROWSER_PEOPLE=${BENCH_BROWSER_PEOPLE:-500}
GO_BENCH=${BENCH_GO:-1}
ONLY=${BENCH_ONLY:-}
case $ONLY in
"" | history) ;;
*)
	echo "bench: BENCH_ONLY=$ONLY: the only step that runs alone is history" >&2
	exit 2
	;;
esac
TOTAL=$((PUBLISHERS * MESSAGES))

# Fixed tst ranges, so runs are comparable: steps 2, 3 and 5 write one fix
# per second from 2025-03-01; the month device gets MONTH_POINTS fixes
# spread over January 2025 (100000 points: 26 s apart, ~3,300 a day).
TST_LOAD=1740787200 # 2025-03-01T00:00:00Z
TST_MONTH=1735689600 # 2025-01-01T00:00:00Z
MONTH_STEP=$((31 * 86400 / (MONTH_POINTS > 0 ? MONTH_POINTS : 1)))
((MONTH_STEP > 0)) || MONTH_STEP=1
DAY_FROM=2025-01-15T00:00:00 DAY_TO=2025-01-15T23:59:59
MONTH_FROM=2025-01-01T00:00:00 MONTH_TO=2025-01-31T23:59:59

# Hard bounds, so a wedged server cannot hang the run.
LOADGEN_TIMEOUT=150s
GO_BENCH_TIMEOUT=240

# The servers must see only the flags given here.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^WHEREHOUSE_' || true)

PASSWORD="bench-$RANDOM$RANDOM$RANDOM"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wherehouse-bench.XXXXXX")
RESULTS=${BENCH_RESULTS:-${TMPDIR:-/tmp}/wherehouse-bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$RESULTS" "$WORK/bin"

stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}
cleanup() {
	local rc=$? pid
	trap - EXIT INT TERM
	# Only this shell's own jobs still running: no stale pid is ever signalled.
	for pid in $(jobs -p); do stop_pid "$pid"; done
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\n== %s  [+%ds]\n' "$*" "$SECONDS"; }
warn() { printf 'bench: %s\n' "$*" >&2; }
now_ns() { date +%s%N; }

# free_port prints a loopback port nothing listens on, not handed out before.
USED_PORTS=" "
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 40000))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			echo "$p"
			return 0
		fi
	done
	warn "no free port found on 127.0.0.1"
	return 1
}

# wait_port PORT SECONDS: until something listens on 127.0.0.1:PORT.
wait_port() {
	local deadline=$((SECONDS + $2))
	until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# status_kib PID FIELD: a /proc/PID/status memory field in KiB (VmRSS,
# VmHWM, RssAnon: the heap and stacks, RssFile: mapped files, here mostly
# bbolt's mmap of history.db, which the kernel can drop under pressure).
status_kib() { awk -v f="$2:" '$1 == f {print $2; found = 1} END {if (!found) print 0}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kib() { status_kib "$1" VmRSS; }
rss_split() { echo "anon $(mib "$(status_kib "$1" RssAnon)") MiB + file $(mib "$(status_kib "$1" RssFile)") MiB"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
# mib_or_empty KIB: MiB, or nothing when unmeasured (so no target looks met).
mib_or_empty() { [[ -n $1 && $1 != 0 ]] && mib "$1" || true; }

# cpu_ms PID: user + system CPU time the process has used so far, in ms.
# CPU per message is less disturbed than wall-clock rates when other work
# shares the machine.
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ms() { awk -v t="$CLK_TCK" '{print int(($14 + $15) * 1000 / t)}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# us_per MS N: microseconds per item.
us_per() { awk -v ms="$1" -v n="$2" 'BEGIN {if (n > 0) printf "%.0f", ms * 1000 / n}'; }

# field LINE NAME prints NAME's value from a RESULT line ("" when absent).
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# loadgen ARGS...: runs the generator, logs everything and sets RES to its
# RESULT line (empty when it could not even start). It runs as a job so an
# interrupt reaches the trap at once, not after the generator's timeout.
RES=
loadgen() {
	local out=$WORK/loadgen.out
	"$WORK/bin/loadgen" -timeout "$LOADGEN_TIMEOUT" "$@" >"$out" 2>>"$RESULTS/loadgen.log" &
	wait "$!" || warn "loadgen $1 $2: run incomplete (see $RESULTS/loadgen.log)"
	cat "$out" >>"$RESULTS/loadgen.log"
	RES=$(grep '^RESULT ' "$out" || true)
}

# start_wherehouse NAME DATA HTTP_PORT ARGS...: starts serve in the
# background, sets SERVER_PID, waits for /healthz and sets STARTUP_MS to
# the time from exec to the first 200 (polled every ~10 ms).
SERVER_PID= STARTUP_MS=
start_wherehouse() {
	local name=$1 data=$2 http=$3 t0 deadline
	shift 3
	t0=$(now_ns)
	WHEREHOUSE_ADMIN_PASSWORD=$PASSWORD "$WORK/bin/wherehouse" serve --data "$data" \
		--http "127.0.0.1:$http" "$@" >>"$RESULTS/$name.log" 2>&1 &
	SERVER_PID=$!
	deadline=$((SECONDS + 30))
	until curl -fs --max-time 5 -o /dev/null "http://127.0.0.1:$http/healthz"; do
		if ((SECONDS >= deadline)) || ! kill -0 "$SERVER_PID" 2>/dev/null; then
			warn "wherehouse $name did not answer /healthz; log: $RESULTS/$name.log"
			tail -20 "$RESULTS/$name.log" >&2
			return 1
		fi
		sleep 0.01
	done
	STARTUP_MS=$((($(now_ns) - t0) / 1000000))
}

MOSQ_PID=
start_mosquitto() {
	"$MOSQUITTO" -c "$WORK/mosquitto.conf" >>"$RESULTS/mosquitto.log" 2>&1 &
	MOSQ_PID=$!
	if ! wait_port "$MOSQ_PORT" 10; then
		warn "mosquitto did not start; log: $RESULTS/mosquitto.log"
		return 1
	fi
}

find_mosquitto() {
	MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || true)}
	[[ -z $MOSQUITTO && -x /usr/sbin/mosquitto ]] && MOSQUITTO=/usr/sbin/mosquitto
	if [[ -z $MOSQUITTO && $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		say "installing mosquitto (apt-get)"
		apt-get install -y --no-install-recommends mosquitto >>"$RESULTS/apt.log" 2>&1 ||
			{ apt-get update >>"$RESULTS/apt.log" 2>&1 && apt-get install -y --no-install-recommends mosquitto >>"$RESULTS/apt.log" 2>&1; } || true
		[[ -x /usr/sbin/mosquitto ]] && MOSQUITTO=/usr/sbin/mosquitto
	fi
	if [[ -z $MOSQUITTO ]]; then
		warn "mosquitto not found: the baseline and external-broker steps are skipped."
		warn "install it (Debian/Ubuntu: sudo apt-get install mosquitto; macOS: brew install mosquitto) or set MOSQUITTO=/path/to/mosquitto"
	fi
}

# median of the numbers on stdin.
median() { sort -g | awk '{a[NR] = $1} END {if (NR) print a[int((NR + 1) / 2)]; else print ""}'; }

# time_query NAME URL: five runs, prints and records the median in ms.
time_query() {
	local name=$1 url=$2 i t times=()
	for ((i = 0; i < 5; i++)); do
		t=$(curl -fsS --max-time 60 -u "admin:$PASSWORD" -o /dev/null -w '%{time_total}' "$url") || t=
		[[ -n $t ]] && times+=("$(awk -v s="$t" 'BEGIN {printf "%.2f", s * 1000}')")
	done
	R[$name]=$(printf '%s\n' "${times[@]}" | median)
	echo "$name: runs ${times[*]} ms → median ${R[$name]} ms"
}

# Values for the summary; "n/a" until measured.
declare -A R

##########################################################################
say "machine"
{
	echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "cpus:    $(nproc) × $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null)"
	echo "kernel:  $(uname -sr)"
	echo "memory:  $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)"
	echo "go:      $(go version)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) (1/5/15 min, before the run)"
	echo "workers: $PUBLISHERS publishers × $MESSAGES messages, QoS 1, retained, inflight 200"
	echo "results: $RESULTS"
} | tee "$RESULTS/machine.txt"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)" -v n="$(nproc)" 'BEGIN {exit !(l > n / 2)}'; then
	warn "the machine is busy (load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs): wall-clock rates will be low and noisy; CPU per message is the steadier figure"
fi

say "build"
if [[ -n ${BENCH_WHEREHOUSE_BIN:-} ]]; then
	cp "$BENCH_WHEREHOUSE_BIN" "$WORK/bin/wherehouse"
	echo "wherehouse: $BENCH_WHEREHOUSE_BIN ($("$WORK/bin/wherehouse" version 2>&1 | head -1))"
else
	tags=$([[ -f frontend/dist/index.html ]] && echo webapp || true)
	go build -tags "$tags" -o "$WORK/bin/wherehouse" ./cmd/wherehouse
	echo "wherehouse: built from $ROOT${tags:+ with the web app}"
fi
go build -o "$WORK/bin/recgen" ./bench/recgen
go build -o "$WORK/bin/recscan" ./bench/recscan
if [[ $ONLY != history ]]; then
	go build -o "$WORK/bin/loadgen" ./bench/loadgen
	go build -o "$WORK/bin/browser" ./bench/browser
	find_mosquitto
fi

##########################################################################
# Steps 1–7; BENCH_ONLY=history skips them.
if [[ $ONLY != history ]]; then
	say "1. Go micro-benchmarks (go test -run XXX -bench . -benchmem ./...)"
	if [[ $GO_BENCH == 1 ]]; then
		# shellcheck disable=SC2086 # BENCH_GOFLAGS is a list of flags
		if ! timeout "$GO_BENCH_TIMEOUT" go test -run XXX -bench . -benchmem ${BENCH_GOFLAGS:-} ./... 2>&1 |
			tee "$RESULTS/gobench.txt"; then
			warn "go test -bench failed or timed out (${GO_BENCH_TIMEOUT}s); continuing (output in $RESULTS/gobench.txt)"
		fi
	else
		echo "skipped (BENCH_GO=0)"
	fi

	##########################################################################
	say "2. embedded broker: $PUBLISHERS publishers × $MESSAGES, QoS 1 → durably stored/s"
	A_HTTP=$(free_port)
	A_MQTT=$(free_port)
	A_DATA=$WORK/store
	start_wherehouse wherehouse "$A_DATA" "$A_HTTP" --mqtt "127.0.0.1:$A_MQTT"
	A_PID=$SERVER_PID
	A_URL=http://127.0.0.1:$A_HTTP
	R[startup_empty_ms]=$STARTUP_MS
	echo "started on an empty store in $STARTUP_MS ms"
	c0=$(cpu_ms "$A_PID")
	loadgen -name embedded -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/load{n}/dev{n}' \
		-tst-start "$TST_LOAD" -tst-step 1 -metrics "$A_URL/metrics"
	res=$RES
	echo "${res:-no result}"
	R[embedded_cpu]=$(us_per $(($(cpu_ms "$A_PID") - c0)) "$(field "$res" msgs)")
	echo "wherehouse CPU per stored message: ${R[embedded_cpu]:-?} µs"
	R[embedded_rate]=$(field "$res" rate)
	R[embedded_p50]=$(field "$res" p50_ms)
	R[embedded_p99]=$(field "$res" p99_ms)
	R[embedded_check]="stored $(field "$res" stored) of sent $TOTAL"
	if [[ -n $res && $(field "$res" stored) == "$TOTAL" && $(field "$res" msgs) == "$TOTAL" ]]; then
		R[embedded_ok]=yes
	else
		R[embedded_ok]=NO
	fi
	echo "check via /metrics: ${R[embedded_check]} → ${R[embedded_ok]}"

	say "2b. the same, not retained (the OwnTracks apps retain; this shows what retaining costs)"
	c0=$(cpu_ms "$A_PID")
	loadgen -name embedded-noretain -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/plain{n}/dev{n}' -retain=false \
		-tst-start "$TST_LOAD" -tst-step 1 -metrics "$A_URL/metrics"
	res=$RES
	echo "${res:-no result}"
	R[noretain_cpu]=$(us_per $(($(cpu_ms "$A_PID") - c0)) "$(field "$res" msgs)")
	echo "wherehouse CPU per stored message: ${R[noretain_cpu]:-?} µs"
	R[noretain_rate]=$(field "$res" rate)
	R[noretain_p50]=$(field "$res" p50_ms)
	R[noretain_p99]=$(field "$res" p99_ms)

	##########################################################################
	say "2c. fences: the same load without and then with 1000 fences (100 per publishing user)"
	# Each user's fences: one 50 km circle around where its device starts (so
	# every fix is evaluated against at least one fence, and enters/leaves it)
	# and 99 circles of 1-3 km scattered within about 150 km.
	fences_made=0
	for ((n = 0; n < PUBLISHERS; n++)); do
		lat0=$((45 + n % 10)) lon0=$((2 + n / 10 % 20))
		while IFS= read -r body; do
			curl -fsS --max-time 10 -u "admin:$PASSWORD" -o /dev/null -X POST \
				"$A_URL/api/v1/fences?owner=fence$n" -d "$body" && fences_made=$((fences_made + 1)) || true
		done < <(awk -v lat0="$lat0" -v lon0="$lon0" -v seed="$n" 'BEGIN {
			srand(seed + 1)
			printf "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[%f,%f]},\"properties\":{\"name\":\"region\",\"radius\":50000}}\n", lon0, lat0
			for (i = 1; i < 100; i++)
				printf "{\"type\":\"Feature\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[%f,%f]},\"properties\":{\"name\":\"f%d\",\"radius\":%d}}\n", lon0 + (rand() - 0.5) * 4, lat0 + (rand() - 0.5) * 3, i, 1000 + rand() * 2000
		}')
	done
	echo "created $fences_made fences"
	R[fences_made]=$fences_made
	loadgen -name nofences -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/nofence{n}/dev{n}' \
		-tst-start "$TST_LOAD" -tst-step 1 -metrics "$A_URL/metrics"
	res=$RES
	echo "${res:-no result}"
	R[nofence_rate]=$(field "$res" rate)
	ev0=$(curl -fsS -u "admin:$PASSWORD" "$A_URL/metrics" | awk '/^wherehouse_fence_events_total/ {s += $2} END {print s + 0}')
	eval0=$(curl -fsS -u "admin:$PASSWORD" "$A_URL/metrics" | awk '/^wherehouse_fence_locations_evaluated_total/ {printf "%d", $2}')
	loadgen -name fences -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/fence{n}/dev{n}' \
		-tst-start "$TST_LOAD" -tst-step 1 -metrics "$A_URL/metrics"
	res=$RES
	echo "${res:-no result}"
	R[fence_rate]=$(field "$res" rate)
	# Evaluation runs after the commit: wait until it has caught up.
	for ((i = 0; i < 100; i++)); do
		evaluated=$(curl -fsS -u "admin:$PASSWORD" "$A_URL/metrics" | awk '/^wherehouse_fence_locations_evaluated_total/ {printf "%d", $2}')
		((${evaluated:-0} - ${eval0:-0} >= TOTAL)) && break
		sleep 0.1
	done
	R[fence_events]=$(($(curl -fsS -u "admin:$PASSWORD" "$A_URL/metrics" | awk '/^wherehouse_fence_events_total/ {s += $2} END {print s + 0}') - ev0))
	R[fence_pct]=$(awk -v a="${R[fence_rate]:-0}" -v b="${R[nofence_rate]:-0}" 'BEGIN {if (b > 0) printf "%.0f", a * 100 / b}')
	echo "with fences: ${R[fence_rate]:-?} msgs/s = ${R[fence_pct]:-?}% of ${R[nofence_rate]:-?} without; ${R[fence_events]} enter/leave events; locations evaluated in that run: $((${evaluated:-0} - ${eval0:-0}))"

	##########################################################################
	say "3. embedded broker while querying the HTTP API ($QUERY_WORKERS loop: /api/0/last, /api/0/locations 1 h ≈ 3600 points)"
	QUERY="user=load0&device=dev0&from=2025-03-01T00:00:00&to=2025-03-01T00:59:59"
	loadgen -name querying -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/query{n}/dev{n}' \
		-tst-start "$TST_LOAD" -tst-step 1 -metrics "$A_URL/metrics" \
		-query-base "$A_URL" -query-params "$QUERY" -query-workers "$QUERY_WORKERS"
	res=$RES
	echo "${res:-no result}"
	R[query_rate]=$(field "$res" rate)
	R[query_qps]=$(field "$res" qps)
	R[query_p50]=$(field "$res" q_p50_ms)
	R[query_p99]=$(field "$res" q_p99_ms)
	R[query_points]=$(field "$res" q_points)
	R[query_ok]=$([[ -n $res && $(field "$res" stored) == "$TOTAL" && $(field "$res" q_errors) == 0 ]] && echo yes || echo NO)

	##########################################################################
	if [[ -n $MOSQUITTO ]]; then
		say "4. baseline: mosquitto relay ceiling, same publishers, one QoS 1 subscriber counting"
		MOSQ_PORT=$(free_port)
		# Minimal and not durable. max_queued_messages is raised from 1000 so
		# mosquitto queues rather than drops for a subscriber that falls behind
		# (the test is for throughput, and a drop would read as a loss);
		# max_inflight_messages stays at its default of 20 unless
		# BENCH_MOSQ_INFLIGHT is set.
		cat >"$WORK/mosquitto.conf" <<-EOF
			listener $MOSQ_PORT 127.0.0.1
			allow_anonymous true
			persistence false
			max_queued_messages 10000000
			log_dest stderr
			log_type error
			log_type warning
		EOF
		if [[ -n ${BENCH_MOSQ_INFLIGHT:-} ]]; then
			echo "max_inflight_messages $BENCH_MOSQ_INFLIGHT" >>"$WORK/mosquitto.conf"
		fi
		R[mosq_inflight]=${BENCH_MOSQ_INFLIGHT:-20}
		start_mosquitto
		echo "$("$MOSQUITTO" -h 2>&1 | head -1), port $MOSQ_PORT"
		c0=$(cpu_ms "$MOSQ_PID")
		loadgen -name mosquitto -broker "tcp://127.0.0.1:$MOSQ_PORT" -count-sub \
			-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/load{n}/dev{n}' \
			-tst-start "$TST_LOAD" -tst-step 1
		res=$RES
		echo "${res:-no result}"
		R[relay_cpu]=$(us_per $(($(cpu_ms "$MOSQ_PID") - c0)) "$(field "$res" sub_msgs)")
		echo "mosquitto CPU per message (received, delivered once): ${R[relay_cpu]:-?} µs"
		R[relay_rate]=$(field "$res" sub_rate)
		R[relay_pub_rate]=$(field "$res" rate)
		R[relay_p50]=$(field "$res" p50_ms)
		R[relay_p99]=$(field "$res" p99_ms)
		R[relay_ok]=$([[ -n $res && $(field "$res" sub_msgs) == "$TOTAL" ]] && echo yes || echo NO)
		# A fresh mosquitto for step 5: no retained messages from this step.
		stop_pid "$MOSQ_PID"

		##########################################################################
		say "5. external broker: wherehouse --broker mosquitto --mqtt off; stored/s vs relay ceiling"
		start_mosquitto
		B_HTTP=$(free_port)
		B_PID=
		if start_wherehouse wherehouse-external "$WORK/store-external" "$B_HTTP" --mqtt off \
			--broker "tcp://127.0.0.1:$MOSQ_PORT" --broker-client-id "wherehouse-bench-$$"; then
			B_PID=$SERVER_PID
		fi
		if [[ -n $B_PID ]]; then
			B_URL=http://127.0.0.1:$B_HTTP
			# wherehouse subscribes asynchronously after connecting: publish probes
			# until one is stored, so the measured run loses nothing to a late
			# subscription.
			subscribed=
			for ((i = 0; i < 20; i++)); do
				LOADGEN_TIMEOUT=2s loadgen -name probe -broker "tcp://127.0.0.1:$MOSQ_PORT" \
					-publishers 1 -messages 1 -topic owntracks/probe/dev -metrics "$B_URL/metrics" \
					-http-user admin -http-password "$PASSWORD"
				probe=$RES
				if [[ $(field "$probe" complete) == true ]]; then
					subscribed=yes
					break
				fi
			done
			[[ -n $subscribed ]] || warn "wherehouse did not store a probe through mosquitto; measuring anyway"
			c0=$(cpu_ms "$B_PID")
			loadgen -name external -broker "tcp://127.0.0.1:$MOSQ_PORT" \
				-publishers "$PUBLISHERS" -messages "$MESSAGES" -topic 'owntracks/load{n}/dev{n}' \
				-tst-start "$TST_LOAD" -tst-step 1 -metrics "$B_URL/metrics" \
				-http-user admin -http-password "$PASSWORD"
			res=$RES
			echo "${res:-no result}"
			R[external_cpu]=$(us_per $(($(cpu_ms "$B_PID") - c0)) "$(field "$res" stored)")
			echo "wherehouse CPU per stored message: ${R[external_cpu]:-?} µs"
			R[external_rate]=$(field "$res" store_rate)
			R[external_ok]=$([[ -n $res && $(field "$res" stored) == "$TOTAL" ]] && echo yes || echo NO)
			if [[ -n ${R[external_rate]} && -n ${R[relay_rate]} && ${R[relay_rate]} != 0 ]]; then
				R[external_pct]=$(awk -v a="${R[external_rate]}" -v b="${R[relay_rate]}" 'BEGIN {printf "%.0f", 100 * a / b}')
			fi
			echo "stored ${R[external_rate]:-?}/s = ${R[external_pct]:-?}% of the relay ceiling ${R[relay_rate]:-?}/s"
			stop_pid "$B_PID"
		else
			warn "step 5 skipped: wherehouse --broker did not start"
		fi
		stop_pid "$MOSQ_PID"
	else
		say "4./5. skipped: no mosquitto"
	fi

	##########################################################################
	say "6. queries on a month: $MONTH_POINTS points for month/phone, $MONTH_STEP s apart from $MONTH_FROM"
	loadgen -name month -broker "tcp://127.0.0.1:$A_MQTT" -user admin -password "$PASSWORD" \
		-publishers 1 -messages "$MONTH_POINTS" -inflight 1000 -topic owntracks/month/phone \
		-tst-start "$TST_MONTH" -tst-step "$MONTH_STEP" -metrics "$A_URL/metrics"
	res=$RES
	echo "${res:-no result}"
	R[month_load_rate]=$(field "$res" rate)
	R[rss_loaded]=$(rss_kib "$A_PID")
	R[rss_loaded_split]=$(rss_split "$A_PID")
	echo "store: $(du -sh "$A_DATA" | cut -f1) on disk; server RSS after loading: $(mib "${R[rss_loaded]}") MiB (${R[rss_loaded_split]})"

	# Sample RSS while the queries run.
	echo 0 >"$WORK/rss_peak"
	(
		peak=0
		while kill -0 "$A_PID" 2>/dev/null; do
			r=$(rss_kib "$A_PID")
			if ((r > peak)); then
				peak=$r
				echo "$peak" >"$WORK/rss_peak"
			fi
			sleep 0.02
		done
	) &
	SAMPLER=$!

	LOC="$A_URL/api/0/locations?user=month&device=phone"
	R[day_points]=$(curl -fsS --max-time 60 -u "admin:$PASSWORD" "$LOC&from=$DAY_FROM&to=$DAY_TO&format=json" | grep -o '"count":[0-9]*' | tail -1 | cut -d: -f2 || true)
	R[month_points]=$(curl -fsS --max-time 60 -u "admin:$PASSWORD" "$LOC&from=$MONTH_FROM&to=$MONTH_TO&format=json" | grep -o '"count":[0-9]*' | tail -1 | cut -d: -f2 || true)
	R[month_bytes]=$(curl -fsS --max-time 60 -u "admin:$PASSWORD" -o /dev/null -w '%{size_download}' "$LOC&from=$MONTH_FROM&to=$MONTH_TO&format=json" || true)
	R[month_geo_bytes]=$(curl -fsS --max-time 60 -u "admin:$PASSWORD" -o /dev/null -w '%{size_download}' "$LOC&from=$MONTH_FROM&to=$MONTH_TO&format=geojson" || true)
	echo "day: ${R[day_points]:-?} points; month: ${R[month_points]:-?} points, json $(mib $((${R[month_bytes]:-0} / 1024))) MiB, geojson $(mib $((${R[month_geo_bytes]:-0} / 1024))) MiB"
	time_query day_json "$LOC&from=$DAY_FROM&to=$DAY_TO&format=json"
	time_query day_geojson "$LOC&from=$DAY_FROM&to=$DAY_TO&format=geojson"
	time_query month_json "$LOC&from=$MONTH_FROM&to=$MONTH_TO&format=json"
	time_query month_geojson "$LOC&from=$MONTH_FROM&to=$MONTH_TO&format=geojson"
	time_query last "$A_URL/api/0/last"
	R[rss_after_queries]=$(rss_kib "$A_PID")
	R[rss_peak_queries]=$(cat "$WORK/rss_peak")
	R[rss_hwm]=$(status_kib "$A_PID" VmHWM)
	R[rss_after_split]=$(rss_split "$A_PID")
	stop_pid "$SAMPLER"
	echo "RSS: after loading $(mib "${R[rss_loaded]}") MiB, peak during queries $(mib "${R[rss_peak_queries]}") MiB, after queries $(mib "${R[rss_after_queries]}") MiB (${R[rss_after_split]}); peak of the whole run (VmHWM, includes ingest) $(mib "${R[rss_hwm]}") MiB"

	say "6b. startup on the loaded store ($(du -sh "$A_DATA" | cut -f1))"
	t0=$(now_ns)
	stop_pid "$A_PID"
	R[shutdown_ms]=$((($(now_ns) - t0) / 1000000))
	if start_wherehouse wherehouse-restart "$A_DATA" "$A_HTTP" --mqtt "127.0.0.1:$A_MQTT"; then
		A_PID=$SERVER_PID
		R[startup_ms]=$STARTUP_MS
		R[rss_startup]=$(rss_kib "$A_PID")
		echo "shutdown ${R[shutdown_ms]} ms; startup to /healthz 200: ${R[startup_ms]} ms (empty store: ${R[startup_empty_ms]} ms); RSS after startup $(mib "${R[rss_startup]}") MiB ($(rss_split "$A_PID"))"
		stop_pid "$A_PID"
	fi

	##########################################################################
	say "7. the web app in headless Chromium: a year of one device (${BROWSER_POINTS:=1051200} points) in the history view, $BROWSER_PEOPLE people live"
	CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
	if [[ -z $CHROMIUM ]]; then
		warn "chromium not found (apt-get install chromium): step 7 skipped"
	elif [[ ! -f frontend/dist/index.html ]]; then
		warn "web app not built (make frontend): step 7 skipped"
	else
		BRES=$(timeout 600 "$WORK/bin/browser" -bin "$WORK/bin/wherehouse" -chromium "$CHROMIUM" \
			-points "$BROWSER_POINTS" -people "$BROWSER_PEOPLE" 2>>"$RESULTS/browser.log") || warn "browser bench failed (see $RESULTS/browser.log)"
		echo "${BRES:-no result}"
		for k in history_ms history_points full_ms full_mib simplified_ms live_markers_ms idle_fps live_fps; do
			R[browser_$k]=$(field " $BRES" "$k")
		done
	fi
fi

##########################################################################
# shellcheck source=bench/history.sh
source "$ROOT/bench/history.sh"
history_step

##########################################################################
# met VALUE OP TARGET → yes/no/?
met() {
	[[ -n $1 ]] || {
		echo "?"
		return
	}
	awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
		ok = (op == ">=") ? v >= t : (op == "<=") ? v <= t : v < t
		print ok ? "yes" : "**no**"
	}'
}
v() { echo "${1:-n/a}"; }

say "summary"
{
	echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load before/after: $(awk -F'load: *' '/^load:/ {print $2}' "$RESULTS/machine.txt" | cut -d' ' -f1-3) / $(cut -d' ' -f1-3 /proc/loadavg)"
	echo
	echo "| metric | wherehouse | baseline | target | met |"
	echo "|---|---|---|---|---|"
	if [[ $ONLY != history ]]; then
		echo "| stored msgs/s, embedded broker, $PUBLISHERS publishers, QoS 1 (acks/s) | $(v "${R[embedded_rate]}") | $(v "${R[relay_rate]}") (mosquitto relay ceiling, not durable) | ≥ 20000 | $(met "${R[embedded_rate]}" ">=" 20000) |"
		echo "| publish→ack latency p50 / p99 (ms) | $(v "${R[embedded_p50]}") / $(v "${R[embedded_p99]}") | $(v "${R[relay_p50]}") / $(v "${R[relay_p99]}") (mosquitto PUBACK) | — | |"
		echo "| stored == sent (/metrics) | ${R[embedded_ok]} (${R[embedded_check]}) | — | equal | ${R[embedded_ok]} |"
		echo "| stored msgs/s, same but not retained (p50 / p99 ms) | $(v "${R[noretain_rate]}") ($(v "${R[noretain_p50]}") / $(v "${R[noretain_p99]}")) | — | — | |"
		echo "| server CPU per message, µs (retained / not retained / external) | $(v "${R[embedded_cpu]}") / $(v "${R[noretain_cpu]}") / $(v "${R[external_cpu]}") | $(v "${R[relay_cpu]}") (mosquitto, per relayed message) | — | |"
		for n in 10 1000 100000; do
			ix=$(awk -v n="BenchmarkEvaluate/fences=$n-" 'index($1, n) == 1 {printf "%.2f", $3 / 1000}' "$RESULTS/gobench.txt" 2>/dev/null || true)
			lin=$(awk -v n="BenchmarkEvaluateLinear/fences=$n-" 'index($1, n) == 1 {printf "%.2f", $3 / 1000}' "$RESULTS/gobench.txt" 2>/dev/null || true)
			if [[ $n == 100000 ]]; then
				echo "| fence evaluation per location, $n fences (µs, R-tree) | $(v "$ix") | $(v "$lin") (every fence's box checked) | < 20 | $(met "$ix" "<" 20) |"
			else
				echo "| fence evaluation per location, $n fences (µs, R-tree) | $(v "$ix") | $(v "$lin") (every fence's box checked) | flat | |"
			fi
		done
		echo "| stored msgs/s with ${R[fences_made]:-?} fences (${R[fence_events]:-?} events) vs without | $(v "${R[fence_rate]}") = $(v "${R[fence_pct]}")% | $(v "${R[nofence_rate]}") (no fences, same run) | ≥ 90% | $(met "${R[fence_pct]}" ">=" 90) |"
		echo "| stored msgs/s while querying the API | $(v "${R[query_rate]}") | — | ≥ 20000 | $(met "${R[query_rate]}" ">=" 20000) |"
		echo "| API queries/s during that ingest ($QUERY_WORKERS loop; p50 / p99 ms) | $(v "${R[query_qps]}") ($(v "${R[query_p50]}") / $(v "${R[query_p99]}")) | — | — | |"
		echo "| external broker: stored msgs/s behind mosquitto (max_inflight_messages ${R[mosq_inflight]:-?}) | $(v "${R[external_rate]}") = $(v "${R[external_pct]}")% | $(v "${R[relay_rate]}") (relay ceiling) | ≥ 90% | $(met "${R[external_pct]}" ">=" 90) |"
		echo "| day query, json (${R[day_points]:-?} points), median of 5 (ms) | $(v "${R[day_json]}") | — | ≤ 5 | $(met "${R[day_json]}" "<=" 5) |"
		echo "| day query, geojson (ms) | $(v "${R[day_geojson]}") | — | — | |"
		echo "| month query, json (${R[month_points]:-?} points) (ms) | $(v "${R[month_json]}") | — | ≤ 120 | $(met "${R[month_json]}" "<=" 120) |"
		echo "| month query, geojson (ms) | $(v "${R[month_geojson]}") | — | ≤ 150 | $(met "${R[month_geojson]}" "<=" 150) |"
		echo "| /api/0/last, all devices (ms) | $(v "${R[last]}") | — | — | |"
		echo "| server RSS after loading $((TOTAL * 5 + MONTH_POINTS)) points (MiB) | $(mib "${R[rss_loaded]:-0}") (${R[rss_loaded_split]:-?}) | — | < 100 | $(met "$(mib_or_empty "${R[rss_loaded]:-}")" "<" 100) |"
		echo "| server RSS peak during queries (MiB) | $(mib "${R[rss_peak_queries]:-0}") | — | < 100 | $(met "$(mib_or_empty "${R[rss_peak_queries]:-}")" "<" 100) |"
		echo "| startup on the loaded store to /healthz 200 (ms) | $(v "${R[startup_ms]}") | $(v "${R[startup_empty_ms]}") (empty store) | < 1000 | $(met "${R[startup_ms]}" "<" 1000) |"
		echo "| web app: open a year (${R[browser_history_points]:-?} points drawn) in the history view, median of 3 (ms) | $(v "${R[browser_history_ms]}") | $(v "${R[browser_full_ms]}") (download of the unsimplified year, $(v "${R[browser_full_mib]}") MiB; the simplified one: $(v "${R[browser_simplified_ms]}")) | < 2000 | $(met "${R[browser_history_ms]}" "<" 2000) |"
		echo "| web app: live view, $BROWSER_PEOPLE people, frames/s while all move (500 updates/s) | $(v "${R[browser_live_fps]}") | $(v "${R[browser_idle_fps]}") (idle) | ≥ 30 | $(met "${R[browser_live_fps]}" ">=" 30) |"
		echo "| web app: all $BROWSER_PEOPLE markers shown after login (ms) | $(v "${R[browser_live_markers_ms]}") | — | — | |"
		echo "| month load, 1 publisher, inflight 1000 (stored msgs/s) | $(v "${R[month_load_rate]}") | — | — | |"
	fi
	history_summary
	if [[ -s $RESULTS/gobench.txt ]]; then
		echo
		echo "Go micro-benchmarks:"
		echo
		echo '```'
		grep -E '^(Benchmark|pkg:)' "$RESULTS/gobench.txt" || echo "(none found)"
		echo '```'
	fi
	if [[ $ONLY != history ]]; then
		echo
		echo "Checks: embedded stored==sent ${R[embedded_ok]}, querying run stored==sent and no query errors ${R[query_ok]}, relay delivered all ${R[relay_ok]:-n/a}, external stored all ${R[external_ok]:-n/a}."
	fi
} | tee "$RESULTS/summary.md"
echo
echo "logs and summary kept in $RESULTS"
