"""Weights as messages (issue 19): packed into chunks, reassembled in any order, refused when they are
not whole, not this run's, or not what the header says."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from modem_ros.agent.modem import ModemAgent
from modem_ros.announce import AnnouncementError, announcement, parse_announcement, trained_episodes
from modem_ros.weights import WeightsAssembler, WeightsError, pack, parse_header, planner_state
from tests.conftest import small_config


@pytest.fixture
def agent():
    agent = ModemAgent(small_config())
    for p in agent.model.parameters():
        p.data.normal_()
    agent.last_update_step = 321
    return agent


def test_chunks_in_any_order_rebuild_the_planners_weights(agent):
    chunks = pack(planner_state(agent.state_dict()), "run-a", 7, 140, 7, chunk_bytes=50_000)
    assert len(chunks) > 3 and all(parse_header(json.dumps(h)) == h for h, _ in chunks)
    random.Random(0).shuffle(chunks)
    assembler = WeightsAssembler()
    states = [assembler.add(h, d) for h, d in chunks]
    assert all(s is None for s in states[:-1])
    other = ModemAgent(small_config())
    other.load_state_dict(states[-1])  # no target network, no optimizer: what acting needs
    assert other.last_update_step == 321
    for a, b in zip(agent.model.parameters(), other.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_corrupt_foreign_or_inconsistent_chunks_are_refused(agent):
    chunks = pack(planner_state(agent.state_dict()), "run-a", 7, 140, 7, chunk_bytes=50_000)
    header, data = chunks[1]
    corrupt = [(h, d if i != 1 else bytes([d[0] ^ 1]) + d[1:]) for i, (h, d) in enumerate(chunks)]
    assembler = WeightsAssembler()
    with pytest.raises(WeightsError, match="fails its SHA-256"):
        for h, d in corrupt:
            assembler.add(h, d)
    liar = WeightsAssembler()  # a real payload of version 3, announced as 10^6 (intact bytes, hash ok)
    with pytest.raises(WeightsError, match="header disagrees"):
        for h, d in pack(planner_state(agent.state_dict()), "run-a", 3, 60, 3):
            liar.add({**h, "version": 10**6, "episodes": 10**6}, d)
    mixed = WeightsAssembler()
    mixed.add(header, data)
    with pytest.raises(WeightsError, match="disagree on their payload"):
        mixed.add({**chunks[2][0], "sha256": "f" * 64}, chunks[2][1])
    for bad, reason in [("nope", "not JSON"), ("[]", "not a JSON object"),
                        (json.dumps({**header, "chunk": 9999}), "impossible"),
                        (json.dumps({**header, "version": True}), "'version' must be int"),
                        (json.dumps({**header, "actors": {"actor_0": -1}}), "'actors' must map"),
                        (json.dumps({**header, "actors": ["actor_0"]}), "'actors' must map")]:
        with pytest.raises(WeightsError, match=reason):
            parse_header(bad)



def test_several_actors_counts_travel_in_headers_and_announcements(agent):
    counts = {"actor_0": 3, "actor_1": 2}
    chunks = pack(planner_state(agent.state_dict()), "run-a", 5, 100, 5, actors=counts)
    assert all(parse_header(json.dumps(h))["actors"] == counts for h, _ in chunks)
    text = announcement(Path("/x.pt"), 5, 100, 5, "run-a", counts)
    info = parse_announcement(text)
    # each planner waits on its own actor's count; alone (no counts) on every episode
    assert trained_episodes(info.actors, "actor_1", info.episodes) == 2
    assert trained_episodes(info.actors, "actor_7", info.episodes) == 0  # no episode of it trained on yet
    assert trained_episodes(None, "", 5) == 5
    with pytest.raises(AnnouncementError, match="'actors' must map"):
        parse_announcement(json.dumps({**json.loads(text), "actors": {"actor_0": "3"}}))
