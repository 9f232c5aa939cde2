#!/usr/bin/env python3
"""Render the bundled demo documents into data/demo/.

Standalone: depends only on fpdf2 and the standard library.
Deterministic: running it twice yields byte-identical files.

    python data/make_demo.py

All prose below is original to this project and is licensed with it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUT_DIR = Path(__file__).resolve().parent / "demo"
FIXED_DATE = datetime(2024, 1, 1, tzinfo=timezone.utc)

# ---------------------------------------------------------------------------
# Lighthouses (one section per page)
# ---------------------------------------------------------------------------

LIGHTHOUSES_TITLE = "Lighthouses: A Short Guide"
LIGHTHOUSES = [
    (
        "1. Ancient Beginnings",
        [
            "For most of human history, sailors approaching a coast at night relied on "
            "fires lit on hilltops or on the roofs of temples. The first purpose-built "
            "tower of real size was the Pharos of Alexandria, raised on the small island "
            "of Pharos off the Egyptian coast. It was completed around 280 BC during the "
            "reign of Ptolemy II, and ancient writers describe a fire burning at its top. "
            "Modern estimates put its height at more than 100 metres, which made it one of "
            "the tallest structures of the ancient world and one of the Seven Wonders.",
            "The Pharos survived for well over a thousand years, but a series of "
            "earthquakes in the Middle Ages left it a ruin. In 1480 the Mamluk sultan "
            "Qaitbay used some of its fallen stone to build a fortress on the same spot, "
            "and the Citadel of Qaitbay still stands there today. The word for lighthouse "
            "in several languages, such as the French 'phare' and the Italian 'faro', "
            "comes from the name of the island.",
            "The Romans built lighthouses at many of their harbours. The best preserved "
            "is the Tower of Hercules near A Coruna in northern Spain, which dates from "
            "the 2nd century AD. It is the oldest lighthouse in the world that is still "
            "in use, although its outer stone casing was added during a restoration in "
            "the 1790s. The tower was declared a UNESCO World Heritage Site in 2009.",
        ],
    ),
    (
        "2. The Fresnel Lens",
        [
            "Early lighthouse lamps wasted most of their light. A bare flame shines in "
            "every direction, and the polished metal mirrors that were placed behind it "
            "absorbed a large share of what they reflected. The problem was solved by the "
            "French physicist Augustin-Jean Fresnel, who worked for the French "
            "lighthouse commission and presented his design in 1822.",
            "Instead of one thick, heavy lens, Fresnel used a central lens surrounded by "
            "concentric rings of glass prisms. The upper and lower prisms bend stray "
            "light back into a single horizontal beam, so that almost all of the lamp's "
            "output is sent out toward the sea. Because the prisms are thin, the whole "
            "apparatus weighs far less than a solid lens of the same diameter would.",
            "The Fresnel lens was first installed in the Cordouan lighthouse in 1823. "
            "Cordouan stands on a rocky shoal at the mouth of the Gironde estuary in "
            "south-western France and is itself a famous building, sometimes called the "
            "Versailles of the Sea because of its decorated chapel and royal apartment.",
            "Fresnel lenses were sold in sizes called orders. A first-order lens is the "
            "largest, standing taller than a person, and was used for major coastal "
            "lights; a sixth-order lens is the smallest and was used in harbours and on "
            "piers. A good first-order light could be seen from more than 20 nautical "
            "miles away on a clear night. Within a few decades nearly every important "
            "lighthouse in Europe and North America had been fitted with one.",
        ],
    ),
    (
        "3. The Keepers",
        [
            "Before automation, every lighthouse needed people to run it. Keepers lit "
            "the lamp at sunset, kept it burning all night and put it out at sunrise. "
            "Oil lamps produced soot, so the wicks had to be trimmed every few hours, "
            "which earned keepers the nickname 'wickies'. Where the lens rotated, a "
            "keeper had to wind the clockwork mechanism by hand, and every shift was "
            "recorded in a logbook along with the weather and passing ships.",
            "Some keepers became national heroes. Grace Darling was the daughter of the "
            "keeper of the Longstone Lighthouse in the Farne Islands, off the coast of "
            "Northumberland. In September 1838 she and her father rowed through a storm "
            "to rescue survivors of the wrecked steamship Forfarshire, and she became "
            "one of the most celebrated women in Victorian Britain.",
            "In the United States, Ida Lewis kept the Lime Rock Lighthouse in Newport, "
            "Rhode Island, for decades. She is credited with saving at least 18 lives, "
            "often rowing out alone in rough water, and the lighthouse was later renamed "
            "in her honour.",
            "The life could also be lonely and dangerous. In December 1900 a relief boat "
            "reached the lighthouse on Eilean Mor in the Flannan Isles of Scotland and "
            "found it empty. Its three keepers had vanished without trace, and the "
            "Flannan Isles mystery has never been fully explained.",
        ],
    ),
    (
        "4. Signals by Day, Night and Fog",
        [
            "A lighthouse is only useful if a navigator can tell which one it is. At "
            "night each light has its own light characteristic: a pattern of flashes, "
            "occultations and colours repeated over a fixed period. On a nautical chart "
            "a light marked 'Fl(2) 10s' shows two flashes every ten seconds. By timing "
            "the flashes with a watch, a sailor can look up the light and fix the ship's "
            "position.",
            "By day the tower itself does the work. Towers are painted in distinctive "
            "patterns called daymarks. The most famous daymark in America belongs to the "
            "Cape Hatteras Lighthouse in North Carolina, which is painted with a black "
            "and white spiral stripe. It is the tallest brick lighthouse in the United "
            "States. Because the shoreline was eroding toward it, the entire tower was "
            "moved 2,900 feet inland in 1999, an engineering project that took several "
            "weeks.",
            "In fog, when neither light nor paint can be seen, stations used sound. "
            "Early fog signals were bells and cannons; later came steam whistles, sirens "
            "and the diaphone, a compressed-air horn that produced a deep two-tone "
            "groan that could be heard for miles. Each station sounded its own timed "
            "pattern, just as each light had its own flash pattern.",
        ],
    ),
    (
        "5. Famous Towers of the Sea",
        [
            "Building a lighthouse on a bare rock in the open sea was one of the hardest "
            "tasks in engineering. The Eddystone Rocks, about 14 miles south of "
            "Plymouth in England, show how hard. The first tower there was a wooden "
            "structure designed by Henry Winstanley and lit in 1698. It was swept away, "
            "together with Winstanley himself, in the Great Storm of 1703.",
            "The third Eddystone lighthouse was the work of the engineer John Smeaton and "
            "was completed in 1759. Smeaton built it from dovetailed granite blocks that "
            "locked into each other and into the rock, and he developed a hydraulic lime "
            "that could set under water. His tower stood on the rock for well over a century. When "
            "the rock beneath it began to erode, the upper part was taken down and "
            "rebuilt on Plymouth Hoe, where it can be visited as Smeaton's Tower.",
            "Smeaton's methods inspired the Bell Rock Lighthouse, built by Robert "
            "Stevenson on a reef off the east coast of Scotland and completed in 1810. "
            "The reef is covered by the sea at high tide, so the workmen could only "
            "build for a few hours each day. The Bell Rock is the oldest surviving "
            "sea-washed lighthouse in the world. Robert Stevenson founded a family of "
            "lighthouse engineers; his grandson was the novelist Robert Louis Stevenson.",
        ],
    ),
    (
        "6. Automation and the Modern Lighthouse",
        [
            "During the twentieth century electricity replaced oil, and timers, light "
            "sensors and remote monitoring made resident keepers unnecessary. In Britain "
            "the last staffed lighthouse was North Foreland in Kent, whose keepers left "
            "when it was automated in November 1998. Most countries completed similar "
            "programmes at about the same time.",
            "The United States kept one exception. Boston Light, on Little Brewster "
            "Island in Boston Harbor, was the first light station in America, first lit "
            "in 1716. The tower was destroyed during the Revolutionary War and rebuilt "
            "in 1783. A special act of Congress required it to remain staffed, and it "
            "became the last officially staffed lighthouse in the country.",
            "Today many lights use long-lasting LED lamps powered by solar panels, and "
            "ships navigate mainly with satellite positioning and electronic charts. "
            "Even so, lighthouses remain official aids to navigation, because a visible "
            "light still works when electronics fail. Many retired stations have been "
            "turned into museums, holiday cottages or bird observatories, and "
            "volunteer groups look after towers that would otherwise fall into ruin.",
        ],
    ),
]

# ---------------------------------------------------------------------------
# Honeybees (one section per page)
# ---------------------------------------------------------------------------

HONEYBEES_TITLE = "Honeybees: Biology and Beekeeping"
HONEYBEES = [
    (
        "1. Life in the Colony",
        [
            "The western honeybee, Apis mellifera, lives in colonies that behave almost "
            "like a single organism. In summer a strong colony holds between 20,000 and "
            "60,000 bees, but almost all of them belong to just three castes: one queen, "
            "many thousands of workers and a few hundred drones.",
            "The queen is the only fully fertile female. She mates early in life, on one "
            "or a few mating flights, and stores the sperm for the rest of her life. At "
            "the height of the season a healthy queen can lay up to 2,000 eggs per day. "
            "She also releases queen pheromone, a chemical signal that tells the workers "
            "that the colony has a laying queen.",
            "Workers are sterile females and do nearly all of the labour. Drones are the "
            "males. A drone has no stinger and does not collect food; its only role is "
            "to mate with a queen from another colony. When autumn comes and food runs "
            "short, the workers push the drones out of the hive.",
        ],
    ),
    (
        "2. From Egg to Adult",
        [
            "Every honeybee passes through four stages: egg, larva, pupa and adult. The "
            "egg hatches after about three days into a small white larva, which nurse "
            "bees feed many times an hour. When the larva is fully grown the workers "
            "cover its cell with a wax cap and it spins a cocoon and becomes a pupa.",
            "The three castes develop at different speeds. A queen emerges as an adult "
            "16 days after the egg is laid, a worker after 21 days, and a drone after "
            "24 days. Whether a female larva becomes a queen or a worker depends on her "
            "diet. Larvae destined to be queens are raised in large, peanut-shaped queen "
            "cells and are fed royal jelly throughout their development, while worker "
            "larvae are switched to a plainer diet of pollen and honey after a few days.",
            "Adult lifespans also differ. A worker born in summer lives only about six "
            "weeks, because flying and foraging wear her out, whereas workers born in "
            "autumn can survive the whole winter. A queen can live for several years.",
        ],
    ),
    (
        "3. The Waggle Dance",
        [
            "When a forager finds a rich patch of flowers she returns to the hive and "
            "tells her sisters where it is by dancing on the vertical surface of the "
            "comb. For food close to the hive she performs a simple round dance. For "
            "sources farther away she performs the waggle dance: she runs forward in a "
            "straight line while shaking her abdomen from side to side, then loops back "
            "and repeats the run.",
            "The angle of the waggle run relative to straight up on the comb shows the "
            "direction of the food relative to the position of the sun. The length of "
            "the waggle run shows the distance: the longer the waggle, the farther away "
            "the flowers. Followers also learn the scent of the flowers from the dancer.",
            "This language was decoded by the Austrian scientist Karl von Frisch, who "
            "studied bees for decades. For this work he shared the Nobel Prize in "
            "Physiology or Medicine in 1973 with Konrad Lorenz and Nikolaas Tinbergen.",
        ],
    ),
    (
        "4. Making Honey and Wax",
        [
            "Honey begins as nectar, a thin sugary liquid that may be more than 70 "
            "percent water. Foragers carry it home in a special honey stomach, where an "
            "enzyme called invertase starts to break its sucrose down into the simpler "
            "sugars glucose and fructose. House bees then spread the nectar in cells and "
            "fan their wings to evaporate the water. Once the honey is down to about 18 "
            "percent water it resists spoiling, and the bees seal the cell with wax.",
            "A single worker makes only about one twelfth of a teaspoon of honey in her "
            "whole life, so a jar of honey represents the work of thousands of bees.",
            "The wax itself is produced by the bees. Young workers have four pairs of "
            "wax glands on the underside of the abdomen, which secrete small clear "
            "flakes of wax. The bees chew the flakes and shape them into the hexagonal "
            "cells of the comb. The hexagon is an efficient shape: it divides a flat "
            "surface into equal cells with no gaps while using the least wax for the "
            "walls.",
        ],
    ),
    (
        "5. Keeping Bees",
        [
            "People have taken honey from wild bees for thousands of years, but modern "
            "beekeeping rests on one discovery. The American clergyman Lorenzo "
            "Langstroth noticed that bees leave open a gap of about 6 to 9 millimetres "
            "between combs, a gap now called bee space. Smaller gaps are sealed with "
            "propolis and larger ones are filled with comb. In 1852 Langstroth patented "
            "a hive of wooden boxes holding removable frames spaced with exactly this "
            "gap, so that each frame could be lifted out and inspected without breaking "
            "the comb. The Langstroth hive is still the most common hive in the world.",
            "The beekeeper's most familiar tool is the smoker, a small bellows that puffs "
            "cool smoke into the hive. Smoke masks the alarm pheromone that guard bees "
            "release and makes the colony calmer during an inspection.",
            "The greatest threat to managed honeybees today is the Varroa destructor "
            "mite, a parasite that feeds on developing bees and spreads viruses between "
            "them. Beekeepers monitor mite numbers through the season and treat their "
            "colonies when the numbers rise, because an untreated colony usually dies "
            "within a few years.",
        ],
    ),
]

# ---------------------------------------------------------------------------
# Tides (Markdown)
# ---------------------------------------------------------------------------

TIDES_MD = """\
# Ocean Tides

Twice a day, along most of the world's coasts, the sea creeps up the shore and then
draws back again. This regular rise and fall of sea level is called the tide. Tides
are driven by gravity, mainly the pull of the Moon, with a smaller contribution from
the Sun.

## What causes the tides

The first satisfying explanation of the tides was given by Isaac Newton in the
*Principia*, published in 1687. Newton showed that the Moon's gravity pulls more
strongly on the side of the Earth that faces it than on the Earth's centre, and more
strongly on the centre than on the far side. This difference in pull, called the
tidal force, stretches the oceans into two bulges: one facing the Moon and one on the
opposite side of the Earth.

As the Earth turns, a given coastline passes through both bulges. That is why most
places see two high tides and two low tides each day. Because the Moon moves along its
orbit in the same direction as the Earth spins, the Earth must turn a little more than
once to bring the Moon back overhead. A lunar day therefore lasts about 24 hours and
50 minutes, and high tides usually arrive about 12 hours and 25 minutes apart. This is
why the time of high tide shifts later by nearly an hour from one day to the next.

## Spring tides and neap tides

The Sun also raises tides, but although it is far more massive than the Moon it is
also much farther away, so its tidal effect is a little less than half of the Moon's.
When the Sun, Moon and Earth line up, at new moon and at full moon, the two effects
add together. The result is a spring tide, with higher high tides and lower low tides
than usual. The name has nothing to do with the season; it comes from the idea of the
water springing up.

When the Sun and Moon are at right angles to each other as seen from the Earth, at
the first and last quarter of the Moon, their pulls partly cancel. The result is a
neap tide, with the smallest difference between high and low water. Spring and neap
tides alternate roughly every seven days, so each occurs about twice a month.

## Different tidal patterns

Not every coast sees the same rhythm. A semidiurnal tide, with two nearly equal high
tides each day, is common on the Atlantic coasts of Europe and North America. A
diurnal tide has only one high tide and one low tide each day; this pattern is found
in parts of the Gulf of Mexico and in Southeast Asia. Many coasts, including much of
the Pacific coast of North America, have a mixed tide, with two high tides of quite
different heights.

The real ocean does not form two smooth bulges, because the continents get in the
way. Instead the tide moves around each ocean basin as a huge rotating wave. At the
centre of each such system there is an amphidromic point, where the tidal range is
close to zero, and the range grows with distance from that point.

## Extreme tides

The shape of a coastline can greatly amplify the tide. The largest tidal range in
the world is found in the Bay of Fundy, between the Canadian provinces of New
Brunswick and Nova Scotia, where the difference between high and low water can exceed
16 metres. The bay is long and narrow, and the natural period of the water sloshing in
it is close to the period of the tide, so each tide builds on the last.

In some funnel-shaped rivers the incoming tide arrives as a single wall of water
travelling upstream, called a tidal bore. The Qiantang River in China has one of the
largest tidal bores in the world, and crowds gather each autumn to watch it.

## Predicting the tides

Because tides are driven by the regular motions of the Moon and Sun, they can be
predicted years ahead. A tide forecast is built by adding together many simple
repeating waves, called tidal constituents, each linked to one feature of the
astronomical cycle. In 1872 William Thomson, later Lord Kelvin, designed the first
tide-predicting machine, a device of pulleys and gears that added these constituents
mechanically and drew the predicted tide curve on paper. Such machines were used to
produce tide tables until electronic computers replaced them in the 1960s.

## Energy from the tides

The rise and fall of the sea carries a great deal of energy. The La Rance tidal power
station in Brittany, France, opened in 1966 and was the first large tidal power plant
in the world. It uses a barrage across the estuary of the Rance River with turbines
that turn as water flows in and out. The Sihwa Lake Tidal Power Station in South
Korea, opened in 2011, later overtook it as the largest by capacity.

Tides also shape life on the shore. The intertidal zone, the strip of coast between
the high and low water marks, is home to barnacles, mussels, crabs and seaweeds that
can survive being covered by sea water for part of each day and exposed to air for
the rest.
"""

# ---------------------------------------------------------------------------
# Coffee (plain text)
# ---------------------------------------------------------------------------

COFFEE_TXT = """\
A SHORT HISTORY OF COFFEE

Origins in Ethiopia and Yemen

The coffee plant is native to the highlands of Ethiopia, where wild coffee trees still
grow in the forests. A popular legend tells of a goat herder named Kaldi who noticed
that his goats became lively and restless after eating the red berries of a certain
shrub. The story was first written down centuries after the events it describes and is
probably not true, but it is still told in almost every history of the drink.

The earliest reliable evidence of coffee drinking comes from Yemen in the fifteenth
century. Sufi monks there drank coffee to stay awake during night-time prayers. Yemen
became the centre of the early coffee trade, and the port of Mocha on the Red Sea gave
its name to a style of coffee that is still sold today.

Coffeehouses of the Ottoman Empire

From Yemen, coffee spread to Mecca, Cairo and the rest of the Islamic world. The first
coffeehouses in Constantinople opened in 1555. These houses, called qahveh khaneh,
became places to talk, listen to music, play chess and hear the news, and they earned
the nickname "schools of the wise". Rulers sometimes tried to close them, fearing that
they encouraged political gossip, but the bans never lasted long.

Coffee arrives in Europe

Venetian merchants brought coffee to Europe in the early seventeenth century, and
the first coffeehouse in England was opened in Oxford in 1650 by a man named Jacob. The
fashion spread quickly to London, where coffeehouses were nicknamed "penny
universities" because for the price of a cup a customer could join conversations with
scholars and merchants. Several famous institutions grew out of them. The insurance
market Lloyd's of London began in the coffeehouse of Edward Lloyd in the 1680s, where
ship owners and underwriters met to share shipping news and arrange insurance.

Coffee becomes a plantation crop

For a long time Yemen controlled the supply of coffee, but in the late seventeenth
century the Dutch succeeded in growing it on the island of Java. In 1723 the French
naval officer Gabriel de Clieu carried a single coffee seedling across the Atlantic to
the island of Martinique, sharing his own ration of drinking water with the plant when
supplies ran low. Many of the coffee trees of the Caribbean are said to descend from it.

Coffee reached Brazil in 1727. According to the usual story, the Portuguese officer
Francisco de Melo Palheta obtained seedlings while on a diplomatic mission to French
Guiana. Brazil's climate suited the plant so well that by the nineteenth century it
was the largest producer of coffee in the world, a position it still holds today.

Two species

Almost all of the coffee drunk today comes from two species. Coffea arabica, the
original Ethiopian plant, grows best at high altitude and is valued for its delicate
flavour. Coffea canephora, usually called robusta, grows at lower altitude, resists
disease better and contains roughly twice as much caffeine. Robusta is widely used in
instant coffee and in espresso blends.

Espresso and the modern cup

The nineteenth and twentieth centuries brought new ways of brewing. In 1884 the
Italian inventor Angelo Moriondo of Turin patented a steam-driven machine for making
coffee in bulk, and in 1901 Luigi Bezzera of Milan patented an improved machine that
made single cups quickly under pressure. Their work led to the espresso machines
found in cafes around the world. Instant coffee, vacuum packing and, later, coffee
pods made the drink easier to prepare at home, and coffee is now one of the most
widely traded agricultural products on Earth.
"""

# ---------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------

QUESTIONS = [
    {"question": "Which Roman lighthouse near A Coruna in Spain is the oldest lighthouse still in use?",
     "answer": "Tower of Hercules", "document": "lighthouses.pdf", "page": 1},
    {"question": "In which lighthouse was the Fresnel lens first installed?",
     "answer": "Cordouan lighthouse", "document": "lighthouses.pdf", "page": 2},
    {"question": "How many lives is the lighthouse keeper Ida Lewis credited with saving?",
     "answer": "at least 18 lives", "document": "lighthouses.pdf", "page": 3},
    {"question": "How far inland was the Cape Hatteras Lighthouse moved in 1999?",
     "answer": "2,900 feet", "document": "lighthouses.pdf", "page": 4},
    {"question": "Which engineer built the Eddystone lighthouse completed in 1759 from dovetailed granite blocks?",
     "answer": "John Smeaton", "document": "lighthouses.pdf", "page": 5},
    {"question": "How many eggs per day can a healthy honeybee queen lay at the height of the season?",
     "answer": "up to 2,000 eggs per day", "document": "honeybees.pdf", "page": 1},
    {"question": "How many days after the egg is laid does a worker honeybee emerge as an adult?",
     "answer": "21 days", "document": "honeybees.pdf", "page": 2},
    {"question": "Who decoded the honeybee waggle dance?",
     "answer": "Karl von Frisch", "document": "honeybees.pdf", "page": 3},
    {"question": "In what year did Lorenzo Langstroth patent his hive with removable frames?",
     "answer": "1852", "document": "honeybees.pdf", "page": 5},
    {"question": "Where is the largest tidal range in the world found?",
     "answer": "Bay of Fundy", "document": "tides.md", "page": 1},
    {"question": "Who designed the first tide-predicting machine in 1872?",
     "answer": "William Thomson", "document": "tides.md", "page": 1},
    {"question": "In which city was the first coffeehouse in England opened in 1650?",
     "answer": "Oxford", "document": "coffee.txt", "page": 1},
]

# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


class DemoPDF(FPDF):
    def __init__(self, doc_title: str, total_pages: int) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = doc_title
        self.total_pages = total_pages

    def header(self) -> None:
        self.set_font("helvetica", "I", 9)
        self.set_text_color(110, 110, 110)
        self.cell(0, 6, self.doc_title, align="L")
        self.cell(0, 6, f"Page {self.page_no()} of {self.total_pages}", align="R",
                  new_x="LMARGIN", new_y="NEXT")
        y = self.get_y() + 1
        self.set_draw_color(180, 180, 180)
        self.line(self.l_margin, y, self.w - self.r_margin, y)
        self.set_y(y + 6)
        self.set_text_color(0, 0, 0)


def render_pdf(path: Path, title: str, sections: list[tuple[str, list[str]]]) -> None:
    pdf = DemoPDF(title, len(sections))
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_title(title)
    pdf.set_author("lloco project")
    pdf.set_subject("lloco demo document")
    pdf.set_creator("lloco data/make_demo.py")
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(True, margin=20)
    for i, (heading, paragraphs) in enumerate(sections, start=1):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 16)
        pdf.multi_cell(0, 9, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
        pdf.set_font("helvetica", "", 11)
        for para in paragraphs:
            para.encode("ascii")  # keep the source plain ASCII (latin-1 safe)
            pdf.multi_cell(0, 6, para, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        if pdf.page_no() != i:
            raise RuntimeError(f"{path.name}: section {heading!r} overflowed its page")
    pdf.output(str(path))


def write_text(path: Path, text: str) -> None:
    text.encode("ascii")
    path.write_bytes(text.encode("ascii"))


def main() -> None:
    import json

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    render_pdf(OUT_DIR / "lighthouses.pdf", LIGHTHOUSES_TITLE, LIGHTHOUSES)
    render_pdf(OUT_DIR / "honeybees.pdf", HONEYBEES_TITLE, HONEYBEES)
    write_text(OUT_DIR / "tides.md", TIDES_MD)
    write_text(OUT_DIR / "coffee.txt", COFFEE_TXT)
    lines = [json.dumps(q, ensure_ascii=True) for q in QUESTIONS]
    write_text(OUT_DIR / "questions.jsonl", "\n".join(lines) + "\n")
    for p in sorted(OUT_DIR.iterdir()):
        print(f"wrote {p.relative_to(OUT_DIR.parent.parent)} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
