import pytest

from spine_otc.memory import InMemoryOtcStore
from spine_otc.testing import OtcStoreConformance


class TestInMemoryOtcStore(OtcStoreConformance):
    @pytest.fixture
    def store(self) -> InMemoryOtcStore:
        return InMemoryOtcStore()
