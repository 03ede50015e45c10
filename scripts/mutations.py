#!/usr/bin/env python3
"""Breaks the semaphore on purpose, once per known bug class, and reports
which checks catch each break. A check that catches nothing proves nothing.

    python3 scripts/mutations.py            # every mutation
    python3 scripts/mutations.py skip-wakeup

Each mutation is applied to the working tree, the unit, model and
runtime-agnostic tests and the loom models are run against it (each with a
time limit: a hang counts as caught, and is reported as such), and the file is
restored. Exit status 1 if any mutation survives every check.
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEM = ROOT / "crates/async-patterns/src/semaphore.rs"

MUTATIONS = [
    ("skip-wakeup", "a waiter served by a release is never woken",
     "node.status = Status::Granted;\n                wakes.push(node.waker.take());",
     "node.status = Status::Granted;\n                drop(node.waker.take());"),
    ("leak-on-cancel", "a granted-but-unpolled acquire that is dropped keeps its permits",
     "Status::Granted => node.needed,", "Status::Granted => 0,"),
    ("serve-out-of-order", "returned permits go to the newest waiter, not the oldest",
     "let Some(head) = list.head else { break };", "let Some(head) = list.tail else { break };"),
    ("double-release", "a forgotten permit is also released on drop",
     "    pub fn forget(mut self) {\n        self.sem.forget_held(std::mem::take(&mut self.permits));\n    }\n}\n\nimpl Drop for OwnedSemaphorePermit",
     "    pub fn forget(mut self) {\n        self.sem.forget_held(self.permits);\n        let _ = &mut self;\n    }\n}\n\nimpl Drop for OwnedSemaphorePermit"),
    ("release-bypasses-queue", "a release puts permits in the free pool even while waiters queue",
     "while cur & QUEUED == 0 {", "loop {"),
    ("close-forgets-waiters", "close() leaves queued waiters waiting",
     "node.status = Status::Failed(AcquireError::Closed);", "let _ = AcquireError::Closed;"),
    ("no-capacity-check", "a request above the total waits instead of failing",
     "if n > list.total {", "if n > list.total && false {"),
]

TEST_BINARIES = ["semaphore", "semaphore_model", "runtime_agnostic"]


def run(cmd, timeout, env=None):
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out


def failures(output):
    names = set(re.findall(r"^---- (\S+) stdout ----", output, re.M))
    names |= set(re.findall(r"^test (\S+) \.\.\. FAILED", output, re.M))
    # The summary block cargo prints at the end: "failures:" then indented names.
    for block in re.findall(r"^failures:\n((?:    \S+\n)+)", output, re.M):
        names |= set(block.split())
    # Panics name their test's thread (loom runs a model's threads on it too).
    names |= {n for n in re.findall(r"^thread '([^']+)' (?:\(\d+\) )?panicked", output, re.M)
              if n != "main"}
    return sorted(names)


def main():
    wanted = set(sys.argv[1:])
    original = SEM.read_text()
    survived = []
    # Build once so the first mutation's timing is not all compile time.
    run(["cargo", "test", "-p", "async-patterns", "--no-run", "-q"], 900)
    for name, what, old, new in MUTATIONS:
        if wanted and name not in wanted:
            continue
        if original.count(old) != 1:
            print(f"{name}: pattern not found exactly once; update the mutation", flush=True)
            survived.append(name)
            continue
        SEM.write_text(original.replace(old, new))
        caught = []
        try:
            for binary in TEST_BINARIES:
                code, out = run(["cargo", "test", "-q", "-p", "async-patterns", "--test", binary,
                                 "--no-fail-fast"], 120)
                if code is None:
                    caught.append(f"{binary}: hung (timed out)")
                elif code != 0:
                    fails = failures(out) or ["(build or unknown failure)"]
                    caught += [f"{binary}::{f}" for f in fails]
            code, out = run(["bash", "scripts/loom.sh"], 900)
            if code is None:
                caught.append("loom: timed out")
            elif code != 0:
                caught += [f"loom::{f}" for f in failures(out)] or ["loom: failed"]
        finally:
            SEM.write_text(original)
        print(f"{name} ({what}):", flush=True)
        for c in caught or ["SURVIVED: no check caught it"]:
            print(f"    {c}", flush=True)
        if not caught:
            survived.append(name)
    sys.exit(1 if survived else 0)


if __name__ == "__main__":
    main()
