"""A module-scoped fixture shared by the metric tests: run torch on one thread.

Metric and likelihood tests run thousands of tiny tensor operations; with several test workers
(or other jobs) on two cores, intra-op threads then oversubscribe the CPU and slow down tenfold.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
