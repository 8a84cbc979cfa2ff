#!/usr/bin/env bash
# The steps of the syscage action (action.yml): steps.sh install | record | gate.
# Inputs come as INPUT_* variables, set by action.yml's env; the runner gives
# RUNNER_TEMP, GITHUB_ACTION_PATH, GITHUB_WORKSPACE, GITHUB_OUTPUT and GITHUB_PATH.
# tests/action_test.go runs these steps as the runner would, without GitHub.
set -euo pipefail

: "${RUNNER_TEMP:?RUNNER_TEMP is not set: run this from the action, or set the variables a runner sets}"
: "${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
work="$RUNNER_TEMP/syscage"
bin="$work/bin"
syscage="$bin/syscage"

# fail reports an error the way the runner shows it, and stops the step.
fail() {
	local pct='%' msg="$*"
	echo "::error title=syscage::${msg//"$pct"/%25}"
	exit 1
}

# as_root runs a command as root: recording needs CAP_BPF and CAP_PERFMON. Hosted
# runners give the runner user sudo without a password.
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	else
		sudo -E env "PATH=$PATH" "$@"
	fi
}

output() { printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"; }

# check_inputs stops at once on inputs that contradict each other.
check_inputs() {
	if [ -n "${INPUT_COMMAND:-}" ] && [ -n "${INPUT_DOCKER_RUN:-}" ]; then
		fail "set command or docker-run, not both"
	fi
	[ -n "${INPUT_COMMAND:-}${INPUT_DOCKER_RUN:-}" ] || fail "nothing to record: set command (a shell command) or docker-run (the arguments of docker run)"
}

install() {
	check_inputs
	mkdir -p "$bin"
	# Into a new file, then renamed over the old: a recorder that an earlier run
	# of the action started may still be running the old one.
	local new="$bin/.syscage.new"
	case "${INPUT_INSTALL:-source}" in
	source)
		command -v go >/dev/null || fail "building syscage needs Go (actions/setup-go), or set install to the path of a syscage binary"
		(cd "${GITHUB_ACTION_PATH:?}/.." && CGO_ENABLED=0 go build -trimpath -o "$new" ./cmd/syscage &&
			CGO_ENABLED=0 go build -trimpath -o "$bin/.syscage-hook.new" ./cmd/syscage-hook &&
			CGO_ENABLED=0 go build -trimpath -o "$bin/.syscage-recorder.new" ./cmd/syscage-recorder) ||
			fail "building syscage from ${GITHUB_ACTION_PATH}/.. failed"
		mv -f "$bin/.syscage-recorder.new" "$bin/syscage-recorder"
		mv -f "$bin/.syscage-hook.new" "$bin/syscage-hook"
		;;
	*)
		[ -f "$INPUT_INSTALL" ] && [ -x "$INPUT_INSTALL" ] || fail "install: $INPUT_INSTALL is not an executable file: give the path of a syscage binary, or source"
		cp "$INPUT_INSTALL" "$new"
		rm -f "$bin/syscage-hook" "$bin/syscage-recorder" # of an earlier build from source
		;;
	esac
	mv -f "$new" "$syscage"
	[ -n "${GITHUB_PATH:-}" ] && echo "$bin" >>"$GITHUB_PATH"
	echo "syscage $("$syscage" --version | awk '{print $NF}') in $bin"
	if [ -n "${INPUT_DOCKER_RUN:-}" ]; then
		install_runtime
	fi
}

# install_runtime registers syscage-runc as Docker's runtime "syscage", with a
# hook config of the action's own: profiles go to $work/profiles.
install_runtime() {
	# syscage-hook is the hot path alone (built from source, with the recorder it
	# starts, syscage-recorder, beside it); the whole syscage binary given as
	# install acts as syscage-runc too, and as its own recorder.
	if [ -x "$bin/syscage-hook" ]; then
		ln -sf syscage-hook "$bin/syscage-runc"
	else
		ln -sf syscage "$bin/syscage-runc"
	fi
	mkdir -p "$work/profiles"
	# Pins of its own, apart from a recorder the host may run.
	local pins
	pins="/sys/fs/bpf/syscage-action-$(printf '%s' "$work" | sha256sum | cut -c1-12)"
	cat >"$work/hook.json" <<-EOF
		{
		  "profilesDir": "$work/profiles",
		  "compatDirs": [],
		  "logFile": "$work/hook.log",
		  "runDir": "$work/run",
		  "pinDir": "$pins",
		  "idleExit": "1s",
		  "timeout": "5s"
		}
	EOF
	local runc
	runc=$(command -v runc || true)
	# dockerd runs the runtime through containerd's shim, without this step's
	# environment: a script carries the hook config and the real runc.
	cat >"$bin/syscage-runtime" <<-EOF
		#!/bin/sh
		export SYSCAGE_HOOK_CONFIG='$work/hook.json'
		${runc:+export SYSCAGE_RUNC='$runc'}
		exec '$bin/syscage-runc' "\$@"
	EOF
	chmod 755 "$bin/syscage-runtime"
	local runtimes
	runtimes=$(docker info --format '{{json .Runtimes}}') || fail "docker info failed: is Docker running, and may this user use it?"
	local have
	have=$(jq -r '.syscage.path // ""' <<<"$runtimes" 2>/dev/null || sed -n 's/.*"syscage":{"path":"\([^"]*\)".*/\1/p' <<<"$runtimes")
	if [ "$have" = "$bin/syscage-runtime" ]; then
		echo "Docker has the runtime syscage already"
		return
	fi
	[ -z "$have" ] || fail "Docker has a runtime named syscage at $have, not this action's $bin/syscage-runtime: remove it from /etc/docker/daemon.json"
	command -v jq >/dev/null || fail "registering the runtime needs jq to edit /etc/docker/daemon.json"
	local cfg=/etc/docker/daemon.json current='{}'
	[ -s "$cfg" ] && current=$(cat "$cfg")
	jq --arg p "$bin/syscage-runtime" '.runtimes.syscage = {path: $p}' <<<"$current" >"$work/daemon.json" ||
		fail "$cfg is not JSON: fix it, then run again"
	as_root mkdir -p /etc/docker
	as_root cp "$work/daemon.json" "$cfg"
	echo "registered the runtime syscage in $cfg; restarting Docker"
	as_root systemctl restart docker || fail "restarting Docker failed (systemctl restart docker)"
	for _ in $(seq 100); do
		docker info >/dev/null 2>&1 && return
		sleep 0.2
	done
	fail "Docker did not come back within 20s after the restart"
}

record() {
	check_inputs
	if [ -n "${INPUT_COMMAND:-}" ]; then
		local rec="$work/recording.json"
		output recording "$rec"
		as_root "$syscage" record -o "$rec" -- bash -c "$INPUT_COMMAND"
		return
	fi
	local name
	name="action-$(date +%s)-$$"
	local rec="$work/profiles/$name.json"
	output recording "$rec"
	# The arguments are shell words, as in a workflow's run line.
	eval "set -- $INPUT_DOCKER_RUN"
	docker run --runtime syscage -e "SYSCAGE_RECORD=$name" "$@"
	[ -f "$rec" ] || fail "no recording at $rec: see $work/hook.log"
}

gate() {
	local profile="${INPUT_PROFILE:?the profile input is required}" rec="${INPUT_RECORDING:?no recording: did the record step run?}"
	local report="${INPUT_REPORT:-github}" mode="${INPUT_MODE:-check}"
	case "$report" in github | sarif) ;; *) fail "report: $report: use github or sarif" ;; esac
	cd "${GITHUB_WORKSPACE:-.}"
	mkdir -p "$work/out"
	local merged
	merged="$work/out/$(basename "$profile")"
	if [ -f "$profile" ]; then
		"$syscage" merge -o "$merged" "$profile" "$rec"
	else
		cp "$rec" "$merged"
	fi
	output profile "$merged"
	local sarif="$work/syscage.sarif"
	case "$mode" in
	merge)
		if [ -f "$profile" ]; then
			local changed=false
			"$syscage" diff --exit-code "$profile" "$merged" || changed=true
			output changed "$changed"
			if [ "$report" = sarif ]; then
				"$syscage" diff --format sarif "$profile" "$merged" >"$sarif"
				output sarif "$sarif"
			else
				"$syscage" diff --format github "$profile" "$merged"
			fi
		else
			echo "$profile is new"
			output changed true
		fi
		mkdir -p "$(dirname "$profile")"
		"$syscage" merge -o "$profile" "$merged"
		echo "wrote $profile: commit it, or take it from the artifact"
		;;
	check)
		[ -f "$profile" ] || fail "$profile does not exist: run the action once with mode merge, and commit the profile it writes"
		local status=0
		if [ "$report" = sarif ]; then
			"$syscage" merge --check --format sarif "$profile" "$rec" >"$sarif" || status=$?
			output sarif "$sarif"
			"$syscage" merge --check --color never "$profile" "$rec" || true
		else
			"$syscage" merge --check --format github "$profile" "$rec" || status=$?
		fi
		case $status in
		0) output changed false ;;
		1)
			output changed true
			echo "the recording needs more than $profile allows; the merged profile is in the artifact"
			exit 1
			;;
		*) fail "syscage merge --check $profile failed (exit $status)" ;;
		esac
		;;
	*) fail "mode: $mode: use merge or check" ;;
	esac
}

case "${1:-}" in
install | record | gate) "$1" ;;
*)
	echo "usage: steps.sh install|record|gate" >&2
	exit 2
	;;
esac
