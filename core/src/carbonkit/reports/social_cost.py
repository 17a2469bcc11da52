"""The social cost of carbon, for statements that ask for it (``carbonkit statement --social-cost``).

One published figure, with its currency, dollar year, emission year and source: the US EPA's
central estimate of the social cost of CO2 for emissions in 2020, 190 US dollars (2020 dollars) per
metric ton of CO2, at a 2.0 % near-term Ramsey discount rate (EPA, 2023, "Report on the Social
Cost of Greenhouse Gases: Estimates Incorporating Recent Scientific Advances", table ES-1; the
same report gives 120 at 2.5 % and 340 at 1.5 %). It is a global damage estimate: it is not split
by country, and carbonkit does not ship country-level figures (such as Ricke et al. 2018,
"Country-level social cost of carbon", Nature Climate Change 8, 895-900, which
experiment-impact-tracker uses). It is applied to the runs' CO2eq, which weights the other
greenhouse gases by their warming potential: an approximation, said in the sentence.
"""

from __future__ import annotations

from attrs import frozen

from ..records import _Record

__all__ = ["EPA_2023_SC_CO2", "SocialCost"]


@frozen(kw_only=True)
class SocialCost(_Record):
    """A social cost of carbon: money per metric ton of CO2, and where it comes from."""

    usd_per_t: float
    currency: str
    dollar_year: int
    emission_year: int
    discount_rate: str
    source: str
    url: str

    def cost(self, grams: float) -> float:
        """The cost of ``grams`` of CO2(eq), in :attr:`currency` of :attr:`dollar_year`."""
        return grams / 1e6 * self.usd_per_t


#: The US EPA's 2023 central estimate for emissions in 2020.
EPA_2023_SC_CO2 = SocialCost(
    usd_per_t=190.0,
    currency="USD",
    dollar_year=2020,
    emission_year=2020,
    discount_rate="2.0% near-term Ramsey discount rate (central estimate)",
    source=(
        "US EPA (2023), Report on the Social Cost of Greenhouse Gases: Estimates Incorporating Recent "
        "Scientific Advances, table ES-1"
    ),
    url="https://www.epa.gov/environmental-economics/scghg",
)
