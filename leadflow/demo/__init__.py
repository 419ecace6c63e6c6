"""`leadflow demo`: a realistic synthetic stream against a running stack, and reps working it.

About 200 made-up people at made-up companies (`*.test` domains) browse the website, read
the newsletter, meet the booth at Web Summit and follow on social networks; eight reps take
the hand-offs, accept them or send them back to nurture, convert and close. Everything
follows from the seed except the run tag, which makes each run's people and reps new.
"""

from leadflow.demo.people import SHOW, Person, interactions_of, synthetic_people
from leadflow.demo.run import REASONS, DemoError, DemoSummary, run_demo

__all__ = [
    "REASONS",
    "SHOW",
    "DemoError",
    "DemoSummary",
    "Person",
    "interactions_of",
    "run_demo",
    "synthetic_people",
]
