#!/usr/bin/env python3
"""Writes testdata/sample-events.jsonl: a small, deterministic population for the README tour.

Twelve customers with the patterns Pulse distinguishes (daily, weekly, Tuesday-only, monthly,
dormant, churned, resurrecting, new, bursty), events in the pulse.v1.Event JSON mapping, up to
2026-03-30. Re-run to regenerate: python3 testdata/make_sample.py > testdata/sample-events.jsonl
"""
import datetime as dt
import json
import random

rng = random.Random(7)
DAY = 86_400_000
START = dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 3, 31, tzinfo=dt.timezone.utc)
CATEGORIES = ["beauty", "books", "electronics", "food", "fashion", "travel"]
KINDS = ["EVENT_KIND_VISIT", "EVENT_KIND_INTERACTION", "EVENT_KIND_PURCHASE", "EVENT_KIND_PAYMENT", "EVENT_KIND_SUPPORT"]


def ms(day: dt.datetime) -> int:
    return int(day.timestamp() * 1000)


def days(first: dt.datetime, last: dt.datetime):
    d = first
    while d < last:
        yield d
        d += dt.timedelta(days=1)


events = []


def emit(customer, day, favourite, purchase_p=0.3):
    t = ms(day) + rng.randrange(8 * 3600_000, 22 * 3600_000)
    kind = "EVENT_KIND_PURCHASE" if rng.random() < purchase_p else rng.choice(KINDS[:2] + KINDS[3:])
    category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
    event = {"customerId": customer, "eventId": f"{customer}-{len(events)}", "timestampMs": str(t), "kind": kind,
             "category": category, "channel": rng.choice(["web", "app", "store"])}
    if kind == "EVENT_KIND_PURCHASE":
        event["amount"] = round(rng.lognormvariate(3.2, 0.6), 2)
    events.append(event)


recent = END - dt.timedelta(days=120)
for day in days(recent, END):
    if rng.random() < 0.9:
        emit("alice", day, "beauty")                      # daily
    if day.weekday() in (2, 5) and rng.random() < 0.9:
        emit("bob", day, "books")                         # weekly, twice a week
    if day.weekday() == 1:
        emit("carol", day, "food", purchase_p=0.8)        # only on Tuesdays
    if day.day == 15:
        emit("dave", day, "electronics", purchase_p=0.9)  # monthly
for day in days(START, END - dt.timedelta(days=45)):
    if rng.random() < 0.5:
        emit("erin", day, "fashion")                      # went dormant 45 days ago
for day in days(START, START + dt.timedelta(days=30)):
    if rng.random() < 0.6:
        emit("frank", day, "travel")                      # churned long ago
for day in list(days(START, START + dt.timedelta(days=40))) + list(days(END - dt.timedelta(days=4), END)):
    if rng.random() < 0.6:
        emit("grace", day, "beauty")                      # back after months: resurrecting
for day in days(END - dt.timedelta(days=3), END):
    emit("heidi", day, "fashion", purchase_p=0.5)         # brand new
for day in days(END - dt.timedelta(days=60), END - dt.timedelta(days=53)):
    for _ in range(6):
        emit("ivan", day, "electronics", purchase_p=0.4)  # one burst, then silence
for customer, favourite in (("judy", "books"), ("mallory", "food"), ("oscar", "travel")):
    for day in days(END - dt.timedelta(days=90), END):
        if rng.random() < 0.25:
            emit(customer, day, favourite)
# A client retry: the same event sent twice is counted once.
events.append(dict(events[-1]))
events.sort(key=lambda e: (int(e["timestampMs"]), e["eventId"]))
for event in events:
    print(json.dumps(event, separators=(",", ":")))
