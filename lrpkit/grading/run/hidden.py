"""Hidden configurations: each submission graded on its own, judged outside its sandbox.

The kernel only *observes*: with the configuration the guard hands it, a check cell runs the
student's function and prints the observation (``lrpkit.selfcheck.checks.encode_observation``),
never
an expected value. Here, in the grader's process, the instructor's reference implementation
(``lrpkit.reference.references``, which no sandbox sees) computes the expected results of that
configuration and ``lrpkit.selfcheck.checks.verdict`` judges the observation against them. A
configuration is drawn from the course secret and the student id (``references.draw``), or
taken from an earlier grades.csv to reproduce its verdicts.
"""

import threading

from lrpkit.grading.course import CHECK_CALL


def check_name(source):
    """The name of the check a check cell calls (``check_conv``), or None."""
    match = CHECK_CALL.search(source)
    return match[1] if match else None


def handles(source):
    """Whether a check cell calls one of the kit's observing checks
    (lrpkit.selfcheck.checks.CHECKS);
    other checks print their verdicts, compared with the stored ones."""
    from lrpkit.selfcheck import checks

    return check_name(source) in checks.CHECKS


#: Exercise 5's check: its expected curves are computed with the configuration when the
#: bonus is graded (else when first asked for), those of typical mistakes only for a wrong
#: curve (they take most of the time)
CURVE_CHECK = "check_perturbation_curve"


class HiddenChecks:
    """Per-student configurations and the verdicts on their observations (thread-safe).

    ``secret``: the course secret's bytes; ``recorded``: {student: Config JSON} to re-grade
    with (from an earlier grades.csv), which take precedence over drawing; ``bonus``: the
    bonus Exercise 5 is graded too (its check's curves then count when drawing).
    """

    def __init__(self, secret, recorded=None, bonus=False):
        self.secret = secret
        self.recorded = dict(recorded or {})
        self.bonus = bonus
        self.lock = threading.Lock()
        self._model = None
        self._expected = {}  # Config JSON -> expected arrays
        self._ahead = {}  # student -> Future of _config(student), from prefetch
        self._pool = None
        self._threads = None  # torch's threads before share_the_cpus

    def share_the_cpus(self):
        """Until close, torch in this process on one thread: the kernels use the CPUs while
        the expected results are computed, and beside them two threads of these small float64
        convolutions take ~1.7x as long as one and take CPU the kernels need (6 drawn
        configurations beside two busy single-thread processes: 17.4 s on 2 threads, 10.5 s
        on 1; on an idle machine 4.9 s and 7.5 s)."""
        import torch

        with self.lock:
            if self._threads is None:
                self._threads = torch.get_num_threads()
                torch.set_num_threads(1)

    def prefetch(self, students):
        """Draw the students' configurations and compute their expected results in order, in
        a thread of their own, while kernels run (much of a kernel's time is one thread
        importing torch): config() then waits for them instead of computing them."""
        from concurrent.futures import ThreadPoolExecutor

        with self.lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="lrpkit-expected")
            for student in students:
                if student not in self._ahead:
                    self._ahead[student] = self._pool.submit(self._config, student)

    def close(self):
        """Stop computing ahead (configurations not started yet are dropped); torch's threads
        as they were before share_the_cpus."""
        with self.lock:
            pool, self._pool = self._pool, None
            self._ahead.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
            self._threads = None

    def model(self):
        """The stand-in in float64 on 32-63 pixels, frozen: made once per grading run."""
        with self.lock:
            if self._model is None:
                from lrpkit.selfcheck import config

                self._model = config.float64_model()
            return self._model

    def config(self, student):
        """The configuration a student is graded on, with its expected results computed."""
        with self.lock:
            ahead = self._ahead.get(student)
        if ahead is not None and not ahead.cancelled():
            return ahead.result()
        return self._config(student)

    def _config(self, student):
        from lrpkit.reference import references
        from lrpkit.selfcheck.config import Config

        if student in self.recorded:
            config = Config.from_json(self.recorded[student])
            expected = references.expected(config, self.model())
            if self.bonus:
                expected |= references.curve_expected(config, self.model(), mistakes=False)
        else:
            draw = references.draw
            config, expected = draw(self.secret, student, self.model(), bonus=self.bonus)
        with self.lock:
            self._expected[config.to_json()] = expected
        return config

    def expected(self, config, name=None, mistakes=False):
        """The expected results of a configuration; with name CURVE_CHECK, with Exercise 5's
        curves (and, with mistakes, those of the typical mistakes)."""
        from lrpkit.reference import references

        with self.lock:
            found = self._expected.get(config.to_json())
        if found is None:
            found = references.expected(config, self.model())
        if name == CURVE_CHECK and ("curve" not in found or mistakes and "curve_lerf" not in found):
            found = found | references.curve_expected(config, self.model(), mistakes=mistakes)
        with self.lock:
            self._expected[config.to_json()] = found
        return found

    def verdict(self, source, stdout, config):
        """(passed, text) of a check cell's printed observation, judged here."""
        from lrpkit.selfcheck import checks

        name = check_name(source)
        if name not in checks.CHECKS:
            return False, f"not graded: the grader knows no check in {source.strip()[:80]!r}"
        lines = [line for line in stdout.splitlines() if line.startswith(checks.PREFIX)]
        if len(lines) != 1:
            return False, (
                "not graded: the check printed no observation (did the code under test "
                "print to the check's output, or stop it?)"
                if not lines
                else "not graded: more than one observation was printed (output forged?)"
            )
        try:
            observation = checks.decode_observation(lines[0])
        except ValueError as error:
            return False, f"not graded: the observation could not be read ({error})"
        passed, text = checks.verdict(name, observation, self.expected(config, name))
        if not passed and name == CURVE_CHECK:  # a wrong curve: which typical mistake?
            exp = self.expected(config, name, mistakes=True)
            passed, text = checks.verdict(name, observation, exp)
        return passed, text
