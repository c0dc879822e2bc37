"""Community ID v1 against the published baseline of corelight/community-id-spec (baseline/README.md)."""

from __future__ import annotations

import pytest

from iotids.stream.community_id import community_id

V4 = ("1.2.3.4", "5.6.7.8")
V6 = ("fe80:0001:0203:0405:0607:0809:0A0B:0C0D", "fe80:1011:1213:1415:1617:1819:1A1B:1C1D")

# (proto, saddr, daddr, sport, dport, id with seed 0, id with seed 1)
VECTORS = [
    (6, *V4, 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    (6, *V4[::-1], 3344, 1122, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    (17, *V4, 1122, 3344, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
    (17, *V4[::-1], 3344, 1122, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=", "1:OShq+iKDAMVouh/4bMxB9Sz4amw="),
    (132, *V4, 1122, 3344, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
    (132, *V4[::-1], 3344, 1122, "1:EKt4MsxuyaE6mL+hmrEkQ9csDD8=", "1:uitchpn5MMGAQKBJh7bIr/bAr7s="),
    (1, *V4, 8, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    (1, *V4[::-1], 0, 0, "1:crodRHL2FEsHjbv3UkRrfbs4bZ0=", "1:9pr4ZGTICiuZoIh90RRYE2RyXpU="),
    (1, *V4, 11, 0, "1:f/YiSyWqczrTgfUCZlBUnvHRcPk=", "1:1DD7cWGC/Yg91YGsQeni8du3pIA="),
    (58, *V6, 128, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (58, *V6[::-1], 129, 0, "1:0bf7hyMJUwt3fMED7z8LIfRpBeo=", "1:IO27GQzPuCtNnwFvjWALMHu5tJE="),
    (58, *V6, 146, 0, "1:fYC8+pz24E+EhANP1EZhpX0Dw10=", "1:Cv4IKJe56BNkF0MBW2YxQ3Nwc3s="),
    (46, *V4, None, None, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
    (46, *V4[::-1], None, None, "1:ikv3kmf89luf73WPz1jOs49S768=", "1:/buhqeOmaRCopOZFy9HnoJd5XW8="),
    (46, *V6, None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
    (46, *V6[::-1], None, None, "1:wQ/2mwrnXP4lmJcHdGL5ePjR+e0=", "1:j6EyyfBzL4vWKHFXgUqb5Az3OxM="),
]


@pytest.mark.parametrize(("proto", "saddr", "daddr", "sport", "dport", "seed0", "seed1"), VECTORS)
def test_spec_baseline(proto, saddr, daddr, sport, dport, seed0, seed1) -> None:
    assert community_id(saddr, daddr, proto, sport, dport) == seed0
    assert community_id(saddr, daddr, proto, sport, dport, seed=1) == seed1


def test_incomplete_or_invalid_tuples_have_no_id() -> None:
    assert community_id("1.2.3.4", "5.6.7.8", 6, None, 80) is None
    assert community_id("1.2.3.4", "not-an-ip", 6, 1, 80) is None
    assert community_id("1.2.3.4", "::1", 6, 1, 80) is None  # mixed families
    assert community_id("1.2.3.4", "5.6.7.8", 6, 1, 70000) is None
