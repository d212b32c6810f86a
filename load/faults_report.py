#!/usr/bin/env python3
"""Per-phase figures of a load/faults.sh run, from load/faults.lua's result file.

    faults_report.py redis|postgres RESULT T_START T_KILL T_RESTART T_READY T_END   (epoch ms)

Phases by the time each answer arrived (in 100 ms buckets): before (< T_KILL), down (T_KILL ..
T_RESTART, the server killed until the command that starts it again), after (>= T_RESTART;
T_READY is when the server was first seen answering). For Redis (no persistence) a 404 on
removing a line is the app honestly reporting data the killed server forgot, not an error. Exits 1 when: anything but 200
before; anything but 200 or a 503 with an x-session-error message while down; a non-200 in the
last 2 s; a socket error or timeout; a 200 that contradicts the client's acknowledged cart; for
PostgreSQL any lost acknowledged write; or no 200 after the restart.
"""
import sys
from collections import defaultdict

OUTCOMES = ["ok", "lost", "contradiction", "resync", "newcookie", "noanswer", "msg-header", "msg-body"]


def main():
    store, path = sys.argv[1], sys.argv[2]
    t_start, t_kill, t_restart, t_ready, t_end = (int(x) for x in sys.argv[3:8])
    forgotten = {"404"} if store == "redis" else set()
    buckets = defaultdict(dict)
    info = {}
    for line in open(path):
        parts = line.split()
        if parts[0] == "bucket":
            buckets[int(parts[1])][parts[2]] = int(parts[3])
        else:
            info[parts[0]] = " ".join(parts[1:])

    def phase(b):
        # bucket b holds the answers of [b*100, b*100+100) ms: "down" is every bucket that
        # overlaps the outage, so an answer just after the kill never counts as "before"
        start, end = b * 100, b * 100 + 100
        return "before" if end <= t_kill else "down" if start < t_restart else "after"

    per = {p: defaultdict(int) for p in ("before", "down", "after")}
    worst = defaultdict(int)
    for b, keys in buckets.items():
        p = phase(b)
        for key, n in keys.items():
            if key == "maxms":
                worst[p] = max(worst[p], n)
            else:
                per[p][key] += n

    def statuses(p):
        return {k: v for k, v in per[p].items() if k not in OUTCOMES}

    rel = lambda t: f"+{(t - t_start) / 1000:.1f}s"
    print(f"== phases: before {rel(t_start)}..{rel(t_kill)}, down {rel(t_kill)}..{rel(t_ready)} "
          f"({(t_restart - t_kill) / 1000:.1f} s), after {rel(t_restart)}..{rel(t_end)} "
          f"(server answering again at {rel(t_ready)})")
    for p in ("before", "down", "after"):
        st = ", ".join(f"{k}: {v}" for k, v in sorted(statuses(p).items())) or "none"
        oc = ", ".join(f"{k} {per[p][k]}" for k in OUTCOMES if per[p][k]) or "none"
        oc = oc.replace("msg-header", "503 with x-session-error").replace("msg-body", "503 with a body message")
        print(f"  {p:6}  answers {st}; outcomes: {oc}; worst latency {worst[p]} ms")

    # when the errors start and stop
    ordered = sorted(buckets)
    after_kill = [b for b in ordered if b * 100 + 100 > t_kill]
    first_err = next((b for b in after_kill if any(k != "200" and k.isdigit() or k == "503-nomsg"
                                                   for k in buckets[b])), None)
    after_ready = [b for b in ordered if b * 100 >= t_restart]
    first_200 = next((b for b in after_ready if buckets[b].get("200")), None)
    non200_after = [b for b in after_ready
                    if any((k.isdigit() and k != "200" and k not in forgotten) or k == "503-nomsg"
                           for k in buckets[b])]
    last_err = max(non200_after) if non200_after else None
    down_200 = [b for b in ordered if phase(b) == "down" and buckets[b].get("200")]
    if down_200:
        print(f"== 200s while down: the last in the bucket starting {(max(down_200) * 100 - t_kill) / 1000:+.1f} s "
              f"from the kill (answers already under way, or a wait that outlasted the outage)")
    if first_err is not None:
        print(f"== first error answer in the 100 ms bucket starting {(first_err * 100 - t_kill) / 1000:+.1f} s from the kill")
    if first_200 is not None:
        print(f"== first 200 in the bucket starting {(first_200 * 100 - t_restart) / 1000:+.1f} s from the restart command")
    recovered = (last_err + 1) * 100 if last_err is not None else t_restart
    print(f"== recovery: the last error answer's bucket ends {(recovered - t_restart) / 1000:+.1f} s after the restart "
          f"command ({(recovered - t_ready) / 1000:+.1f} s after the server was seen answering); only 200s"
          f"{' (and 404s on forgotten lines)' if forgotten else ''} from then on, the app never restarted")
    print(f"== wrk: {info.get('requests')} requests in {info.get('seconds')} s, p99 {info.get('p99_ms')} ms, "
          f"max {info.get('max_ms')} ms, socket errors {info.get('socket_errors')}; "
          f"sessions left uncertain at the end {info.get('left_uncertain')}")

    problems = []
    bad_before = {k: v for k, v in statuses("before").items() if k != "200"}
    if bad_before:
        problems.append(f"non-200 before the fault: {bad_before}")
    bad_down = {k: v for k, v in statuses("down").items() if k not in ("200", "503")}
    bad_after = {k: v for k, v in statuses("after").items() if k not in {"200", "503"} | forgotten}
    if bad_after:
        problems.append(f"after the restart, answers other than 200 / 503 with a message: {bad_after}")
    if bad_down:
        problems.append(f"while down, answers other than 200 / 503 with a message: {bad_down}")
    if not per["down"].get("503"):
        problems.append("no 503 at all while the store was down")
    tail = [b for b in non200_after if b * 100 >= t_end - 2000]
    if tail:
        problems.append(f"errors still in the last 2 s: {len(tail)} buckets")
    if first_200 is None:
        problems.append("no 200 after the restart")
    sock = info.get("socket_errors", "")
    if any(not part.endswith(":0") for part in sock.split(",")):
        problems.append(f"socket errors/timeouts: {sock}")
    contradictions = sum(per[p]["contradiction"] for p in per)
    if contradictions:
        problems.append(f"{contradictions} 200 answers contradict the acknowledged cart")
    lost = sum(per[p]["lost"] for p in per)
    if store == "postgres" and lost:
        problems.append(f"{lost} answers show acknowledged writes LOST (PostgreSQL is durable)")
    if store == "redis":
        print(f"== redis (no persistence): {lost} answers found a session the killed server forgot "
              f"(an empty cart, or a new cookie: {sum(per[p]['newcookie'] for p in per)} new sessions "
              f"issued and followed); contradictions {contradictions}")
    else:
        print(f"== postgres: lost acknowledged writes seen in answers: {lost}; contradictions {contradictions}")
    resync = sum(per[p]["resync"] for p in per)
    print(f"== writes with an unknown outcome (503 'session not saved' or no answer) found APPLIED on "
          f"the next read: {resync}")
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
