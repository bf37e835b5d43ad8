"""How many threads run model calls: TensorFlow's two pools and the runner's, from the CPUs.

TF Serving's ``--tensorflow_intra_op_parallelism`` (threads inside one op),
``--tensorflow_inter_op_parallelism`` (ops run at once) and ``--tensorflow_session_parallelism``
(both, when neither is set) keep upstream's meaning and precedence (``server.cc``); 0 means
auto-configured, which here is the CPUs the process may use (``timonel.server.cpus``: its
affinity and its cgroup's quota), where TensorFlow would count the affinity mask alone.

A call runs its ops in the thread that makes it (``Servable.run``), so the runner's threads are
the ops that run at once: there are as many as the inter-op parallelism. More would have every
core shared by several threads that run ops, plus the event loop, which then waits for a core
while requests queue behind it: with eight runner threads per CPU, 32 clients got fewer answers
than 8 on a 2-core machine (bench/README.md). With ``--tensorflow_inter_op_parallelism=-1`` the
runner has one thread per CPU.

For the same reason the intra-op parallelism, when no flag sets it, shares the CPUs among the
threads that make calls (the runner's, or the batch threads with ``--enable_batching``) where TF
Serving gives every op all of them: with a call already running on each CPU, an op split across
CPUs only adds threads that wait for each other, and a large model's throughput under load fell
to about two thirds (bench/README.md). One call on an idle server then uses fewer cores.
"""

from __future__ import annotations

from dataclasses import dataclass

from timonel.server.options import ServerOptions


@dataclass(frozen=True)
class ThreadSizing:
    """The threads that run model calls, and the CPU count they were sized for."""

    cpus: int
    #: ConfigProto.intra_op_parallelism_threads: threads one op's kernels are split across
    intra_op: int
    #: ConfigProto.inter_op_parallelism_threads: the pool that runs a call's ops; -1: none, every
    #: call runs in the thread that makes it
    inter_op: int
    #: the direct runner's threads, each making one session call at a time
    runner_threads: int
    #: with ``--enable_batching``, the scheduler's threads, each running one batch at a time
    batch_threads: int | None = None

    def describe(self) -> str:
        """One start-up log line, so an operator sees what the server sized for."""
        kind, threads = (
            ("runner", self.runner_threads)
            if self.batch_threads is None
            else ("batch", self.batch_threads)
        )
        callers = f"{threads} {kind} thread{'' if threads == 1 else 's'}"
        return (
            f"Sized for {self.cpus} CPUs: {callers}, "
            f"intra-op parallelism {self.intra_op}, inter-op parallelism {self.inter_op}"
        )


def thread_sizing(
    options: ServerOptions, cpus: int, *, num_batch_threads: int | None = None
) -> ThreadSizing:
    """The threads for ``options`` on ``cpus`` CPUs (``usable_cpus()`` in the server);
    ``num_batch_threads`` is the batching parameter when batching is on (0: one per CPU, as
    TF Serving), and its threads then make the calls."""
    intra = options.tensorflow_intra_op_parallelism
    inter = options.tensorflow_inter_op_parallelism
    if intra <= 0 and inter <= 0 and inter != -1:  # neither set: the session-wide flag
        intra = inter = options.tensorflow_session_parallelism
    inter = inter if inter > 0 or inter == -1 else cpus
    runner_threads = inter if inter > 0 else cpus
    batch_threads = None if num_batch_threads is None else num_batch_threads or cpus
    callers = batch_threads or runner_threads
    return ThreadSizing(
        cpus=cpus,
        intra_op=intra if intra > 0 else max(1, cpus // callers),
        inter_op=inter,
        runner_threads=runner_threads,
        batch_threads=batch_threads,
    )
