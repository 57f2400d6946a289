# bench/history.sh — step 8 of bench/run.sh, "History at scale" (issue 7).
# Sourced by run.sh, not run on its own: it uses run.sh's helpers (say,
# warn, free_port, start_wherehouse, stop_pid, time_query, median, field,
# rss_kib, rss_split, mib, now_ns), its $WORK, $RESULTS and $PASSWORD, and
# records its results in R[h*] for history_summary below.
#
# On a Recorder store written by bench/recgen (location fixes 13–39 s
# apart, payloads as bench/loadgen's):
#   a. 1,000,000 points, 10 devices of 3 users, January 2025 (100,000 a
#      device): `wherehouse import` on the stopped store → points/s; the
#      store's bytes per point against the .rec files'; serve it and
#      sample VmRSS while querying; the month of one device over
#      /api/0/locations (json, geojson) against bench/recscan, which
#      answers the same request as the OwnTracks Recorder does, from the
#      .rec file.
#   b. BENCH_HISTORY_POINTS (10,000,000) points, BENCH_HISTORY_DEVICES (100)
#      devices of one user per five devices, each starting 365/devices days
#      after the one before (so 2025 holds ~8 devices at a time): import
#      rate, bytes per point, RSS, and bbox + time queries on
#      /api/v1/locations (1 km boxes around fixes in the data, their
#      calendar month; median of 10).
# When this wherehouse has `compact` or `check` commands, they are run on
# the imported store (compact timed, before sizes are taken).

HIST_POINTS=1000000 HIST_DEVICES=10 HIST_USERS=3
HIST_SCALE_POINTS=${BENCH_HISTORY_POINTS:-10000000}
HIST_SCALE_DEVICES=${BENCH_HISTORY_DEVICES:-100}
HIST_INTERVAL=26s # mean gap: 100,000 fixes ≈ a month
HIST_START=2025-01-01T00:00:00Z
HIST_MONTH_FROM=2025-01-01T00:00:00 HIST_MONTH_TO=2025-01-31T23:59:59
# Bounds, so a wedged import or query cannot hang the run.
HIST_IMPORT_TIMEOUT=900
HIST_QUERY_TIMEOUT=60

HWH=$WORK/bin/wherehouse
HDIR=$WORK/history

sub() { printf -- '-- %s  [+%ds]\n' "$*" "$SECONDS"; }

# per_point TOTAL POINTS: TOTAL / POINTS with one decimal.
per_point() { awk -v t="$1" -v n="$2" 'BEGIN {if (n > 0) printf "%.1f", t / n}'; }
# millions N: "1M", "10M", "2.5M".
millions() { awk -v n="$1" 'BEGIN {printf "%gM", n / 1e6}'; }

# wh_has COMMAND: whether this wherehouse lists COMMAND in its --help (the
# store work under way may add `compact` and `check`).
wh_has() {
	[[ -n ${HWH_HELP:-} ]] || HWH_HELP=$("$HWH" --help 2>&1 || true)
	grep -Eq "^[[:space:]]+wherehouse $1([[:space:]]|\$)" <<<"$HWH_HELP"
}

# hist_recgen KEY DIR ARGS...: writes a Recorder store with bench/recgen
# and records its points and .rec bytes.
hist_recgen() {
	local key=$1 dir=$2 res
	shift 2
	res=$("$WORK/bin/recgen" -dir "$dir" -interval "$HIST_INTERVAL" -start "$HIST_START" "$@" 2>>"$RESULTS/recgen.log") ||
		warn "recgen failed (see $RESULTS/recgen.log)"
	echo "${res:-no result}" | tee -a "$RESULTS/recgen.log"
	R[${key}_points]=$(field " $res" points)
	R[${key}_rec_bytes]=$(field " $res" bytes)
	R[${key}_rec_bpp]=$(field " $res" bytes_per_point)
}

# hist_import KEY DATA SRC: times `wherehouse import --data DATA SRC` on a
# stopped store (no control socket, so it writes the store itself) and
# records points/s, CPU µs per point and peak RSS (from /usr/bin/time).
hist_import() {
	local key=$1 data=$2 src=$3 out=$RESULTS/history-import-$1.txt tf=$WORK/import-time-$1 t0 ms rc=0 new u s kib timer=()
	[[ -x /usr/bin/time ]] && timer=(/usr/bin/time -o "$tf" -f '%U %S %M')
	sub "importing: wherehouse import --data $data $src"
	t0=$(now_ns)
	if [[ -t 2 ]]; then # a terminal: show the import's progress line
		timeout "$HIST_IMPORT_TIMEOUT" "${timer[@]}" "$HWH" import --data "$data" --progress "$src" >"$out" &
	else
		timeout "$HIST_IMPORT_TIMEOUT" "${timer[@]}" "$HWH" import --data "$data" "$src" >"$out" 2>&1 &
	fi
	wait "$!" || rc=$?
	ms=$((($(now_ns) - t0) / 1000000))
	cat "$out"
	((rc == 0)) || warn "import exited with status $rc (see $out)"
	new=$(sed -n 's/^imported [0-9]* messages (\([0-9]*\) new.*/\1/p' "$out")
	R[${key}_imported]=${new:-0}
	R[${key}_import_ok]=$([[ $rc == 0 && ${new:-0} == "${R[${key}_points]:-}" ]] && echo yes || echo NO)
	R[${key}_import_s]=$(awk -v ms="$ms" 'BEGIN {printf "%.1f", ms / 1000}')
	R[${key}_import_rate]=$(awk -v n="${new:-0}" -v ms="$ms" 'BEGIN {if (ms > 0 && n > 0) printf "%.0f", n * 1000 / ms}')
	if [[ -s $tf ]]; then
		read -r u s kib < <(tail -1 "$tf")
		R[${key}_import_cpu]=$(awk -v u="$u" -v s="$s" -v n="${new:-0}" 'BEGIN {if (n > 0) printf "%.1f", (u + s) * 1e6 / n}')
		R[${key}_import_rss]=$kib
	fi
	echo "import: ${new:-0} new of ${R[${key}_points]:-?} in ${R[${key}_import_s]:-} s = ${R[${key}_import_rate]:-?} points/s (target ≥ 200000); CPU ${R[${key}_import_cpu]:-?} µs per point; peak RSS $(mib "${R[${key}_import_rss]:-0}") MiB"
}

# hist_maintain KEY DATA: `wherehouse compact` (timed) and `wherehouse
# check` on the stopped store, when this binary has them.
hist_maintain() {
	local key=$1 data=$2 t0 rc=0
	if wh_has compact; then
		sub "wherehouse compact --data $data"
		t0=$(now_ns)
		timeout "$HIST_IMPORT_TIMEOUT" "$HWH" compact --data "$data" >"$RESULTS/history-compact-$key.txt" 2>&1 &
		wait "$!" || rc=$?
		R[${key}_compact_s]=$(awk -v ms="$((($(now_ns) - t0) / 1000000))" 'BEGIN {printf "%.1f", ms / 1000}')
		tail -3 "$RESULTS/history-compact-$key.txt"
		echo "compact: ${R[${key}_compact_s]:-} s, exit status $rc"
	fi
	if wh_has check; then
		sub "wherehouse check --data $data"
		rc=0
		timeout "$HIST_IMPORT_TIMEOUT" "$HWH" check --data "$data" >"$RESULTS/history-check-$key.txt" 2>&1 &
		wait "$!" || rc=$?
		R[${key}_check]="$(grep -v '^[[:space:]]*$' "$RESULTS/history-check-$key.txt" | tail -1) (exit status $rc)"
		echo "check: ${R[${key}_check]:-}"
	fi
}

# hist_sizes KEY DATA: bytes per point of the store, on disk (allocated
# blocks: bbolt grows its file sparsely and never shrinks it) and as file
# sizes, against the .rec files'.
hist_sizes() {
	local key=$1 data=$2 points=${R[${1}_points]:-0} hist alloc apparent
	hist=$(stat -c %s "$data/history.db" 2>/dev/null || echo 0)
	alloc=$(du -sB1 "$data" | cut -f1)
	apparent=$(du -sb "$data" | cut -f1)
	ls -la "$data" >>"$RESULTS/history-sizes.txt"
	R[${key}_hist_bpp]=$(per_point "$hist" "$points")
	R[${key}_disk_bpp]=$(per_point "$alloc" "$points")
	R[${key}_apparent_bpp]=$(per_point "$apparent" "$points")
	R[${key}_ratio]=$(awk -v a="$alloc" -v r="${R[${key}_rec_bytes]:-0}" 'BEGIN {if (r > 0) printf "%.3f", a / r}')
	echo "on disk: data directory $(mib $((alloc / 1024))) MiB allocated = ${R[${key}_disk_bpp]:-} bytes/point (file sizes $(mib $((apparent / 1024))) MiB = ${R[${key}_apparent_bpp]:-}; history.db ${R[${key}_hist_bpp]:-}); .rec ${R[${key}_rec_bpp]:-} bytes/point; store/.rec = ${R[${key}_ratio]:-} (target ≤ 0.333)"
}

# hist_serve KEY DATA: starts wherehouse on the store (loopback ports) and
# a VmRSS sampler; sets HPID and HURL.
HPID= HURL= HSAMPLER=
hist_serve() {
	local key=$1 data=$2 http mqtt
	http=$(free_port) mqtt=$(free_port)
	HPID=
	if ! start_wherehouse "history-$key" "$data" "$http" --mqtt "127.0.0.1:$mqtt"; then
		return 1
	fi
	HPID=$SERVER_PID HURL=http://127.0.0.1:$http
	R[${key}_startup_ms]=$STARTUP_MS
	R[${key}_rss_startup]=$(rss_kib "$HPID")
	echo "serving: started in $STARTUP_MS ms; RSS $(mib "${R[${key}_rss_startup]:-}") MiB ($(rss_split "$HPID"))"
	echo 0 >"$WORK/hist_rss_peak"
	(
		peak=0
		while kill -0 "$HPID" 2>/dev/null; do
			r=$(rss_kib "$HPID")
			if ((r > peak)); then
				peak=$r
				echo "$peak" >"$WORK/hist_rss_peak"
			fi
			sleep 0.02
		done
	) &
	HSAMPLER=$!
}

# hist_unserve KEY: records RSS after the queries and the peak, stops.
hist_unserve() {
	local key=$1
	[[ -n $HPID ]] || return 0
	R[${key}_rss_after]=$(rss_kib "$HPID")
	R[${key}_rss_split]=$(rss_split "$HPID")
	stop_pid "$HSAMPLER"
	R[${key}_rss_peak]=$(cat "$WORK/hist_rss_peak")
	echo "RSS: after startup $(mib "${R[${key}_rss_startup]:-0}") MiB, peak during queries $(mib "${R[${key}_rss_peak]:-0}") MiB, after $(mib "${R[${key}_rss_after]:-0}") MiB (${R[${key}_rss_split]:-}) (target < 200)"
	stop_pid "$HPID"
	HPID=
}

# json_count FILE: the last "count" member of a JSON answer.
json_count() { grep -oE '"count"[[:space:]]*:[[:space:]]*[0-9]+' "$1" 2>/dev/null | tail -1 | grep -oE '[0-9]+$' || true; }

# hist_month KEY REC: the month of user0/dev0 over /api/0/locations, json and
# geojson, against bench/recscan on its .rec files in REC (median of 5 each).
hist_month() {
	local key=$1 rec=$2 loc i t0 rc f times=() res=
	loc="$HURL/api/0/locations?user=user0&device=dev0&from=$HIST_MONTH_FROM&to=$HIST_MONTH_TO"
	curl -fsS --max-time "$HIST_QUERY_TIMEOUT" -u "admin:$PASSWORD" -o "$WORK/hist_month.json" "$loc&format=json" || true
	R[${key}_month_points]=$(json_count "$WORK/hist_month.json")
	time_query "${key}_month_json" "$loc&format=json"
	time_query "${key}_month_geojson" "$loc&format=geojson"
	for ((i = 0; i < 5; i++)); do
		rc=0
		t0=$(now_ns)
		"$WORK/bin/recscan" -dir "$rec" -user user0 -device dev0 -from "$HIST_MONTH_FROM" -to "$HIST_MONTH_TO" \
			>/dev/null 2>"$WORK/recscan.err" || rc=$?
		if ((rc == 0)); then
			times+=("$(awk -v ns="$(($(now_ns) - t0))" 'BEGIN {printf "%.2f", ns / 1e6}')")
			res=$(grep '^RESULT ' "$WORK/recscan.err" || true)
		else
			warn "recscan failed: $(cat "$WORK/recscan.err")"
		fi
	done
	R[${key}_recscan]=$(printf '%s\n' "${times[@]}" | median)
	R[${key}_recscan_points]=$(field " ${res:-}" count)
	echo "recscan (Recorder-style .rec scan): runs ${times[*]} ms → median ${R[${key}_recscan]:-} ms; ${R[${key}_recscan_points]:-?} points, $(field " ${res:-}" bytes) bytes"
	for f in json geojson; do
		R[${key}_speedup_$f]=$(awk -v b="${R[${key}_recscan]:-}" -v w="${R[${key}_month_$f]:-}" 'BEGIN {if (b > 0 && w > 0) printf "%.1f", b / w}')
	done
	echo "month of user0/dev0: wherehouse ${R[${key}_month_points]:-?} points, json ${R[${key}_month_json]:-?} ms (${R[${key}_speedup_json]:-?}× faster than recscan), geojson ${R[${key}_month_geojson]:-?} ms (${R[${key}_speedup_geojson]:-?}×) (target ≥ 10×)"
	[[ ${R[${key}_month_points]:-} == "${R[${key}_recscan_points]:-}" ]] ||
		warn "wherehouse answered ${R[${key}_month_points]:-?} points, recscan ${R[${key}_recscan_points]:-?}"
}

# hist_bbox KEY REC DEVICES: ten /api/v1/locations bbox + time queries, each a
# ~1 km box around a fix of another device (devices 0, DEVICES/10, ...;
# their largest .rec file's line 5000, 8000, ...) over that file's calendar
# month.
hist_bbox() {
	local key=$1 rec=$2 devices=$3 q n user file k line lat lon ym from to url code times=() counts=() t out=$WORK/hist_bbox.json
	for ((q = 0; q < 10; q++)); do
		n=$((q * devices / 10))
		user=user$((n % ${R[${key}_users]:-1}))
		file=$(ls -S "$rec/rec/$user/dev$n"/*.rec 2>/dev/null | head -1 || true)
		[[ -n $file ]] || continue
		k=$((5000 + q * 3000))
		line=$(awk -v k="$k" 'NR <= k {l = $0} NR == k {exit} END {print l}' "$file")
		lat=$(sed -n 's/.*"lat":\([-0-9.]*\).*/\1/p' <<<"$line")
		lon=$(sed -n 's/.*"lon":\([-0-9.]*\).*/\1/p' <<<"$line")
		ym=$(basename "$file" .rec)
		from=${ym}-01T00:00:00Z
		to=$(date -u -d "${ym}-01 +1 month -1 second" +%Y-%m-%dT%H:%M:%SZ)
		url="$HURL/api/v1/locations?bbox=$(awk -v la="$lat" -v lo="$lon" 'BEGIN {
			d = 0.0045; e = d / cos(la * 3.14159265 / 180)
			printf "%.6f,%.6f,%.6f,%.6f", lo - e, la - d, lo + e, la + d }')&from=$from&to=$to&limit=1000"
		echo "$url" >>"$RESULTS/history-bbox-urls.txt"
		t=$(curl -sS --max-time "$HIST_QUERY_TIMEOUT" -u "admin:$PASSWORD" -o "$out" -w '%{http_code} %{time_total}' "$url" || true)
		code=${t%% *}
		if [[ $code != 200 ]] || ! grep -q '"data"' "$out"; then
			R[${key}_bbox_status]="HTTP ${code:-none}: $(head -c 120 "$out" 2>/dev/null | tr -d '\n')"
			echo "bbox query: ${R[${key}_bbox_status]:-} ($url)"
			[[ $code == 404 ]] && R[${key}_bbox_status]="404: /api/v1/locations not there yet"
			return 0
		fi
		times+=("$(awk -v s="${t#* }" 'BEGIN {printf "%.2f", s * 1000}')")
		counts+=("$(json_count "$out")")
	done
	R[${key}_bbox_status]=ok
	R[${key}_bbox_ms]=$(printf '%s\n' "${times[@]}" | median)
	R[${key}_bbox_max]=$(printf '%s\n' "${times[@]}" | sort -g | tail -1)
	R[${key}_bbox_counts]="${counts[*]}"
	[[ " ${counts[*]} " != *" 0 "* ]] || warn "a bbox query answered no points, though each box is drawn around a fix in the data"
	echo "bbox + month: ${#times[@]} queries ${times[*]} ms → median ${R[${key}_bbox_ms]:-} ms, max ${R[${key}_bbox_max]:-} ms (target < 50); points answered: ${counts[*]}"
}

history_step() {
	local label
	say "8. history at scale: import, bytes per point, RSS, month query against a .rec scan"
	if [[ ${BENCH_HISTORY:-1} == 0 ]]; then
		echo "skipped (BENCH_HISTORY=0)"
		return 0
	fi
	mkdir -p "$HDIR"
	echo "wherehouse commands: compact $(wh_has compact && echo yes || echo no), check $(wh_has check && echo yes || echo no)"

	sub "8a. generating $(millions $HIST_POINTS) points: $HIST_DEVICES devices of $HIST_USERS users, ~$HIST_INTERVAL apart from $HIST_START"
	R[hs_users]=$HIST_USERS
	R[hs_devices]=$HIST_DEVICES
	hist_recgen hs "$HDIR/rec-small" -points "$HIST_POINTS" -devices "$HIST_DEVICES" -users "$HIST_USERS"
	hist_import hs "$HDIR/data-small" "$HDIR/rec-small"
	hist_maintain hs "$HDIR/data-small"
	hist_sizes hs "$HDIR/data-small"
	sub "8a. serving the $(millions $HIST_POINTS) store"
	if hist_serve hs "$HDIR/data-small"; then
		hist_month hs "$HDIR/rec-small"
		time_query hs_last "$HURL/api/0/last"
		hist_unserve hs
	fi
	rm -rf "$HDIR/rec-small" "$HDIR/data-small"

	if ((HIST_SCALE_POINTS <= 0)); then
		echo "scale part skipped (BENCH_HISTORY_POINTS=0)"
		return 0
	fi
	label=$(millions "$HIST_SCALE_POINTS")
	R[hx_label]=$label
	R[hx_devices]=$HIST_SCALE_DEVICES
	R[hx_users]=$(((HIST_SCALE_DEVICES + 4) / 5))
	local stagger=$((365 * 86400 / HIST_SCALE_DEVICES))
	sub "8b. generating $label points: $HIST_SCALE_DEVICES devices of ${R[hx_users]:-} users, each starting ${stagger} s after the one before"
	hist_recgen hx "$HDIR/rec-scale" -points "$HIST_SCALE_POINTS" -devices "$HIST_SCALE_DEVICES" -users "${R[hx_users]:-}" -stagger "${stagger}s"
	hist_import hx "$HDIR/data-scale" "$HDIR/rec-scale"
	hist_maintain hx "$HDIR/data-scale"
	hist_sizes hx "$HDIR/data-scale"
	sub "8b. serving the $label store"
	if hist_serve hx "$HDIR/data-scale"; then
		hist_bbox hx "$HDIR/rec-scale" "$HIST_SCALE_DEVICES"
		time_query hx_month_json "$HURL/api/0/locations?user=user0&device=dev0&from=$HIST_MONTH_FROM&to=$HIST_MONTH_TO&format=json"
		time_query hx_last "$HURL/api/0/last"
		hist_unserve hx
	fi
	rm -rf "$HDIR"
}

# history_summary: the step's rows of the summary table.
history_summary() {
	local k label
	[[ ${BENCH_HISTORY:-1} == 0 ]] && return 0
	for k in hs hx; do
		[[ -n ${R[${k}_points]:-} ]] || continue
		label=$(millions "${R[${k}_points]:-}")
		echo "| history import, $label points, ${R[${k}_devices]:-$HIST_DEVICES} devices (points/s; CPU µs per point; import peak RSS MiB) | $(v "${R[${k}_import_rate]:-}") ($(v "${R[${k}_import_cpu]:-}") µs; $(mib "${R[${k}_import_rss]:-0}") MiB; all stored: ${R[${k}_import_ok]:-?}) | — | ≥ 200000 | $(met "${R[${k}_import_rate]:-}" ">=" 200000) |"
		[[ -n ${R[${k}_compact_s]:-} ]] && echo "| wherehouse compact after the $label import (s) | ${R[${k}_compact_s]:-} | — | — | |"
		echo "| on-disk bytes per point, $label store (data dir allocated; file sizes; history.db) | $(v "${R[${k}_disk_bpp]:-}") = $(v "${R[${k}_ratio]:-}") of .rec ($(v "${R[${k}_apparent_bpp]:-}"); $(v "${R[${k}_hist_bpp]:-}")) | $(v "${R[${k}_rec_bpp]:-}") (.rec files) | ≤ 0.333 of .rec | $(met "${R[${k}_ratio]:-}" "<=" 0.3334) |"
		echo "| server RSS serving the $label store: peak during queries (MiB; after startup; startup ms) | $(mib "${R[${k}_rss_peak]:-0}") ($(mib "${R[${k}_rss_startup]:-0}"); ${R[${k}_startup_ms]:-?} ms; after: ${R[${k}_rss_split]:-?}) | — | < 200 | $(met "$(mib_or_empty "${R[${k}_rss_peak]:-}")" "<" 200) |"
		[[ -n ${R[${k}_check]:-} ]] && echo "| \`wherehouse check\` on the $label store | ${R[${k}_check]} | — | — | |"
	done
	if [[ -n ${R[hs_points]:-} ]]; then
		echo "| month query json, ${R[hs_month_points]:-?} points of one device, $(millions "${R[hs_points]:-}") store (ms; speedup) | $(v "${R[hs_month_json]:-}") (${R[hs_speedup_json]:-?}×) | $(v "${R[hs_recscan]:-}") (bench/recscan: the Recorder's .rec scan, ${R[hs_recscan_points]:-?} points) | ≥ 10× | $(met "${R[hs_speedup_json]:-}" ">=" 10) |"
		echo "| month query geojson, same (ms; speedup against the same json scan) | $(v "${R[hs_month_geojson]:-}") (${R[hs_speedup_geojson]:-?}×) | $(v "${R[hs_recscan]:-}") | — | |"
	fi
	if [[ -n ${R[hx_points]:-} ]]; then
		if [[ ${R[hx_bbox_status]:-} == ok ]]; then
			echo "| bbox (~1 km) + month query on the ${R[hx_label]:-} store, /api/v1/locations, median of 10 (ms; max; points answered) | $(v "${R[hx_bbox_ms]:-}") (max ${R[hx_bbox_max]:-}; ${R[hx_bbox_counts]:-}) | — | < 50 | $(met "${R[hx_bbox_ms]:-}" "<" 50) |"
		else
			echo "| bbox (~1 km) + month query on the ${R[hx_label]:-} store, /api/v1/locations | ${R[hx_bbox_status]:-n/a} | — | < 50 | ? |"
		fi
		echo "| month query json, one device of the ${R[hx_label]:-} store (ms) | $(v "${R[hx_month_json]:-}") | $(v "${R[hs_month_json]:-}") ($(millions "${R[hs_points]:-0}") store) | — | |"
	fi
}
