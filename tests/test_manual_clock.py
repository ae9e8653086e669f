"""The suite's fake clock fires what falls due, in order, and nothing cancelled."""

from __future__ import annotations


def test_timers_fire_in_due_order_and_cancelled_ones_do_not(manual_clock):
    fired = []
    manual_clock.call_later(2.0, lambda: fired.append(("b", manual_clock.now())))
    manual_clock.call_later(1.0, lambda: fired.append(("a", manual_clock.now())))
    manual_clock.call_later(1.5, lambda: fired.append(("x", manual_clock.now()))).cancel()
    manual_clock.advance(1.2)
    assert fired == [("a", 1001.0)] and manual_clock.now() == 1001.2
    assert manual_clock.pending == 1
    manual_clock.advance(5)
    assert fired == [("a", 1001.0), ("b", 1002.0)] and manual_clock.pending == 0


def test_a_timer_set_by_a_timer_fires_within_the_same_advance(manual_clock):
    fired = []
    manual_clock.call_later(1, lambda: manual_clock.call_later(1, lambda: fired.append(manual_clock.now())))
    manual_clock.advance(3)
    assert fired == [1002.0]
