"""Load the demo: sections, authors, articles with photos, a staff login, then each app's demo.

Each installed app with a `demo` module offering `seed_demo(*, now) -> list[str]` loads
its own data and returns the lines to print; apps are asked in INSTALLED_APPS order.
Running it again updates the same rows (nothing is duplicated; the giving and
readership history is made only once) and resets the editor's password, which it
prints with how to pass the two-factor sign-in.
"""

from __future__ import annotations

import io
import secrets
from collections import Counter
from datetime import datetime, timedelta
from importlib import import_module

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import module_has_submodule
from django.utils.translation import get_language_info
from PIL import Image, ImageDraw

from newsroom import services
from newsroom.links import absolute
from newsroom.models import Article, Author, Category, Topic

CATEGORIES = [
    ("politics", "Politics", "Parliaments, coalitions, courts and the street."),
    ("economy", "Economy", "Prices, wages, ports and the money that moves between them."),
    (
        "climate-water",
        "Climate & Water",
        "Heat, drought, rivers, aquifers and the plans to share them.",
    ),
    ("culture", "Culture", "Books, film, music, food and the people who make them."),
    ("technology", "Technology", "Start-ups, networks, surveillance and the tools people build."),
]

TOPICS = [
    ("elections", "Elections", "Campaigns, ballots and results."),
    ("jordan-river", "Jordan River", "The river, its valley and the countries along it."),
    ("energy", "Energy", "Gas fields, solar farms and the grid."),
    ("cities", "Cities", "Housing, transit and the life of the region's cities."),
    ("media", "Media", "Journalism, platforms and press freedom."),
    ("labour", "Labour", "Work, unions and migration for work."),
]

AUTHORS = [
    (
        "nadia-saleh",
        "Nadia Saleh",
        "Covers water and climate from Amman. Before journalism she surveyed wells for a decade.",
        (38, 92, 120),
    ),
    (
        "yoav-mizrahi",
        "Yoav Mizrahi",
        "Economics correspondent in Haifa, writing about ports, prices and the people behind both.",
        (120, 72, 40),
    ),
    (
        "rania-khoury",
        "Rania Khoury",
        "Political reporter in Beirut; she has covered four elections and three caretaker governments.",
        (96, 40, 96),
    ),
    (
        "omar-farid",
        "Omar Farid",
        "Culture and technology writer based in Cairo and, lately, on trains between cities.",
        (40, 110, 70),
    ),
]

# Names and descriptions in Arabic and Hebrew: the same rows serve every language.
NAMES = {
    "politics": {
        "ar": {"name": "سياسة", "description": "برلمانات وائتلافات ومحاكم، والشارع."},
        "he": {"name": "פוליטיקה", "description": "פרלמנטים, קואליציות, בתי משפט והרחוב."},
    },
    "economy": {
        "ar": {
            "name": "اقتصاد",
            "description": "الأسعار والأجور والموانئ، والأموال التي تتنقل بينها.",
        },
        "he": {"name": "כלכלה", "description": "מחירים, שכר, נמלים והכסף שעובר ביניהם."},
    },
    "climate-water": {
        "ar": {
            "name": "المناخ والمياه",
            "description": "الحر والجفاف والأنهار والمياه الجوفية، وخطط تقاسمها.",
        },
        "he": {
            "name": "אקלים ומים",
            "description": "חום, בצורת, נהרות, אקוויפרים והתוכניות לחלוק בהם.",
        },
    },
    "culture": {
        "ar": {"name": "ثقافة", "description": "كتب وأفلام وموسيقى وطعام، والناس الذين يصنعونها."},
        "he": {"name": "תרבות", "description": "ספרים, קולנוע, מוזיקה, אוכל והאנשים שיוצרים אותם."},
    },
    "technology": {
        "ar": {
            "name": "تكنولوجيا",
            "description": "الشركات الناشئة والشبكات والمراقبة، والأدوات التي يبنيها الناس.",
        },
        "he": {"name": "טכנולוגיה", "description": "סטארט-אפים, רשתות, מעקב והכלים שאנשים בונים."},
    },
    "elections": {
        "ar": {"name": "الانتخابات", "description": "الحملات والاقتراع والنتائج."},
        "he": {"name": "בחירות", "description": "קמפיינים, קלפיות ותוצאות."},
    },
    "jordan-river": {
        "ar": {"name": "نهر الأردن", "description": "النهر وواديه والبلدان الواقعة على ضفافه."},
        "he": {"name": "נהר הירדן", "description": "הנהר, העמק שלו והמדינות שלאורכו."},
    },
    "energy": {
        "ar": {"name": "الطاقة", "description": "حقول الغاز ومزارع الطاقة الشمسية وشبكة الكهرباء."},
        "he": {"name": "אנרגיה", "description": "שדות גז, חוות סולאריות ורשת החשמל."},
    },
    "cities": {
        "ar": {"name": "المدن", "description": "السكن والنقل والحياة في مدن المنطقة."},
        "he": {"name": "ערים", "description": "דיור, תחבורה והחיים בערי האזור."},
    },
    "media": {
        "ar": {"name": "الإعلام", "description": "الصحافة والمنصات وحرية الصحافة."},
        "he": {"name": "תקשורת", "description": "עיתונות, פלטפורמות וחופש העיתונות."},
    },
    "labour": {
        "ar": {"name": "العمل", "description": "العمل والنقابات والهجرة من أجل العمل."},
        "he": {"name": "עבודה", "description": "עבודה, איגודים והגירת עבודה."},
    },
    "nadia-saleh": {
        "ar": {
            "name": "نادية صالح",
            "bio": "تغطي شؤون المياه والمناخ من عمّان. قبل الصحافة أمضت عقدًا في مسح الآبار.",
        },
        "he": {
            "name": "נאדיה סאלח",
            "bio": "מסקרת מים ואקלים מעמאן. לפני העיתונות סקרה בארות במשך עשור.",
        },
    },
    "yoav-mizrahi": {
        "ar": {
            "name": "يوآف مزراحي",
            "bio": "مراسل الشؤون الاقتصادية في حيفا، يكتب عن الموانئ والأسعار والناس الذين يقفون وراءهما.",
        },
        "he": {
            "name": "יואב מזרחי",
            "bio": "כתב כלכלי בחיפה, כותב על נמלים, מחירים והאנשים שמאחורי שניהם.",
        },
    },
    "rania-khoury": {
        "ar": {
            "name": "رانيا خوري",
            "bio": "مراسلة سياسية في بيروت؛ غطّت أربع جولات انتخابية وثلاث حكومات تصريف أعمال.",
        },
        "he": {
            "name": "ראניה ח'ורי",
            "bio": "כתבת פוליטית בביירות; סיקרה ארבע מערכות בחירות ושלוש ממשלות מעבר.",
        },
    },
    "omar-farid": {
        "ar": {
            "name": "عمر فريد",
            "bio": "يكتب عن الثقافة والتكنولوجيا من القاهرة، ومؤخرًا من القطارات بين المدن.",
        },
        "he": {
            "name": "עומר פריד",
            "bio": "כותב על תרבות וטכנולוגיה מקהיר, ולאחרונה גם מרכבות בין ערים.",
        },
    },
}

# Each version of a story in another language: its slug -> the slug of the version it
# translates (which comes before it in ARTICLES).
TRANSLATIONS = {
    "مزارعو-الوادي-يستبدلون-قنوات-الغمر-بالتنقيط": "valley-farmers-trade-flood-canals-for-drip-lines",
    "חקלאי-העמק-עוברים-לטפטוף": "valley-farmers-trade-flood-canals-for-drip-lines",
    "محادثات-الائتلاف-تتعثر-عند-ميزانية-البلديات": "coalition-talks-stall-over-budget-for-municipalities",
    "small-dams-bring-water-back-to-the-wells": "سدود-صغيرة-في-الوادي",
    "הנמל-שלא-ישן-לומד-לעבוד-בלי-משמרת-לילה": "container-port-automation-and-the-night-shift",
    "haifa-rents-outpace-wages": "שכר-הדירה-בחיפה-עולה-מהר-מהשכר",
}

# (slug, headline, dek, category, topics, authors, hours ago (negative: scheduled ahead;
# None: draft), top story rank, language, paragraphs, pull quotes, photo caption,
# photo credit, photo colours)
ARTICLES = [
    (
        "valley-farmers-trade-flood-canals-for-drip-lines",
        "Valley farmers trade flood canals for drip lines as the river thins",
        "A cooperative of 140 growers has cut its water use by a third in two seasons. Keeping the savings is harder.",
        "climate-water",
        ["jordan-river"],
        ["nadia-saleh"],
        3,
        1,
        "en",
        [
            "At five in the morning the pump house at the edge of the cooperative is already humming. Twenty years ago the same hour meant opening sluice gates and watching brown water spread between rows of tomatoes.",
            "Today the water arrives through black plastic lines, a few litres an hour at the foot of each plant. The growers' books show the change: the cooperative drew 31 percent less from the canal last season than it did three years ago.",
            "<h2>Where the savings go</h2>",
            "Hydrologists who have studied similar schemes warn that efficiency can disappear into expansion. When each field needs less water, the temptation is to plant more fields.",
            'The cooperative\'s chair says its members voted to cap their planted area for five years. "We did not save the water to spend it again," she said.',
            "Whether that vote holds through a bad year for prices is the question nobody in the pump house wants to answer yet.",
        ],
        ["We did not save the water to spend it again."],
        "Drip lines run between rows of young tomato plants in the valley.",
        "Photo: Nadia Saleh / The Levant Ledger",
        ((46, 110, 78), (196, 170, 92)),
    ),
    (
        "coalition-talks-stall-over-budget-for-municipalities",
        "Coalition talks stall over one line of the budget: money for towns",
        "Three parties agree on ministries and a programme, but not on who pays for rubbish collection and street lights.",
        "politics",
        ["elections", "cities"],
        ["rania-khoury"],
        5,
        2,
        "en",
        [
            "Negotiators spent eleven hours in a hotel conference room on Tuesday and emerged with agreement on almost everything except the transfer to municipal councils.",
            "Mayors from the country's smaller towns say the formula used for a decade leaves them unable to pay for basic services. Larger cities argue that they carry the cost of commuters who pay their taxes elsewhere.",
            "<blockquote><p>A government that cannot collect the rubbish will not be forgiven for anything else it does.</p></blockquote>",
            "One negotiator, who asked not to be named because the talks are continuing, said a compromise linking transfers to population served during working hours was on the table.",
            "The president has given the parties until the end of the month before consultations start again.",
        ],
        ["The question is not who governs, but who pays for the street lights."],
        "Delegates leave the hotel after the eleventh hour of talks.",
        "Photo: Karim Abou Jaoude",
        ((70, 60, 110), (210, 190, 160)),
    ),
    (
        "container-port-automation-and-the-night-shift",
        "The port that never sleeps is learning to run without its night shift",
        "Automated cranes have doubled the pace at the new terminal. The dockworkers' union is negotiating what comes next.",
        "economy",
        ["labour"],
        ["yoav-mizrahi"],
        8,
        3,
        "en",
        [
            "The new terminal's cranes are painted white and are operated, most of the time, from an office two kilometres away.",
            "Ships now leave the berth in a little over a day, against nearly three at the old quay, and shipping lines have begun to shift calls from other ports in the eastern Mediterranean.",
            "The union representing 1,200 dockworkers signed a deal last spring guaranteeing no compulsory redundancies until 2028 in exchange for retraining as remote operators.",
            "Fewer than a third of those who applied have passed the course so far. Union officials say the test measures speed at a simulator, not knowledge of the port.",
            "Management says the standard is set by safety, not by the number of jobs it wants to keep.",
        ],
        ["The cranes are fast. The question is who gets to sit at the controls."],
        "Automated cranes at the new container terminal at dusk.",
        "Photo: Yoav Mizrahi / The Levant Ledger",
        ((30, 60, 100), (230, 140, 60)),
    ),
    (
        "bread-prices-rise-as-wheat-subsidy-narrows",
        "Bread prices rise for the first time in six years as the wheat subsidy narrows",
        "Bakers say the cheapest loaf will cost a fifth more from next week. The government says the poorest households will be compensated.",
        "economy",
        ["labour", "cities"],
        ["yoav-mizrahi", "rania-khoury"],
        14,
        None,
        "en",
        [
            "The finance ministry confirmed on Sunday that the subsidy on imported wheat will apply only to the flour used for the standard loaf.",
            "Bakers who make anything else, from sesame rings to the thin bread sold by weight, will pay the market price from the first of next month.",
            "The ministry says cash transfers to 400,000 registered households will offset the cost. Economists note the register has not been updated since before the last census.",
            "Queues outside bakeries in the capital were longer than usual on Monday as families bought ahead.",
        ],
        [],
        "A baker stacks loaves at dawn in the old market.",
        "Photo: Lina Haddad",
        ((150, 100, 50), (240, 220, 180)),
    ),
    (
        "a-library-of-cassette-tapes-from-the-1970s",
        "A library of cassette tapes is bringing a decade of forgotten songs back",
        "Volunteers have digitised 3,000 tapes left in a shuttered record shop. Some of the singers are hearing themselves for the first time in forty years.",
        "culture",
        ["media"],
        ["omar-farid"],
        20,
        4,
        "en",
        [
            "The shop closed in 1991, and for thirty years its stock sat in cardboard boxes in a relative's storeroom.",
            "When the owner's grandson opened them, he found wedding recordings, radio sessions and albums by singers who never made it onto a record label's catalogue.",
            "<h2>Finding the singers</h2>",
            "A group of volunteers has spent two years cleaning, digitising and cataloguing the tapes. They post each song online with a request: if you know who this is, tell us.",
            "So far they have found 41 of the performers. One, now in her seventies, listened to her own voice at a small gathering last month and asked them to play it again.",
        ],
        ["She listened to her own voice and asked them to play it again."],
        "Cassette tapes from the archive on a volunteer's desk.",
        "Photo: Omar Farid / The Levant Ledger",
        ((120, 50, 60), (240, 200, 120)),
    ),
    (
        "solar-farms-on-reservoir-roofs",
        "Floating solar panels could cover the reservoirs and slow their evaporation",
        "A pilot on one reservoir produced power and kept an estimated 60,000 cubic metres of water from the sun in its first summer.",
        "climate-water",
        ["energy"],
        ["nadia-saleh"],
        26,
        5,
        "en",
        [
            "Engineers anchored 4,000 panels on pontoons across a tenth of the reservoir's surface in March.",
            "By September the installation had delivered enough electricity for the pumping station beside it, with a surplus sold to the grid.",
            "The larger prize may be the water. Shading cuts evaporation, which in a hot summer can take more from a reservoir than the towns it supplies.",
            "Ecologists want more data on what the shade does to algae and fish before the scheme grows.",
        ],
        [],
        "Rows of floating panels on the reservoir.",
        "Photo: Water Authority",
        ((40, 90, 140), (180, 210, 220)),
    ),
    (
        "mesh-networks-in-the-old-city",
        "Neighbours build their own internet when the cables fail",
        "A mesh network of rooftop routers now links 300 homes in the old city, run by volunteers and paid for by a monthly collection.",
        "technology",
        ["cities", "media"],
        ["omar-farid"],
        30,
        None,
        "en",
        [
            "The first router went up on a bakery roof after a storm cut the neighbourhood's lines for a week.",
            "Each new household buys a small antenna and points it at a neighbour's. Traffic hops from roof to roof until it reaches one of three connections to the wider internet.",
            "The volunteers publish the network's accounts each month on a board outside the mosque and in a group chat.",
            "Regulators have so far left the project alone, saying it is a private network between consenting neighbours.",
        ],
        ["Traffic hops from roof to roof until it reaches the wider internet."],
        "A volunteer adjusts a rooftop antenna above the old city.",
        "Photo: Omar Farid / The Levant Ledger",
        ((60, 60, 70), (120, 200, 200)),
    ),
    (
        "young-voters-and-the-registration-deadline",
        "Half of first-time voters have not registered, a week before the deadline",
        "Civic groups blame an online form that fails on older phones; the electoral commission says paper forms remain available.",
        "politics",
        ["elections"],
        ["rania-khoury"],
        36,
        None,
        "en",
        [
            "About 210,000 people will be old enough to vote for the first time in the spring, according to the commission's own estimate.",
            "By Friday, fewer than 105,000 had registered. Student unions have set up tables at universities with volunteers helping to fill in paper forms.",
            "The commission said the online form had been tested on all common devices and that a fix for an upload problem had been released on Wednesday.",
        ],
        [],
        "Students register to vote at a university table.",
        "Photo: Sami Aziz",
        ((90, 30, 40), (230, 230, 230)),
    ),
    (
        "translators-subtitling-the-festival",
        "The translators behind the film festival work through the night",
        "Forty films, five languages, one week: inside the subtitling room.",
        "culture",
        [],
        ["omar-farid", "nadia-saleh"],
        44,
        None,
        "en",
        [
            "The subtitling room is a former classroom with blackout curtains and a kettle that is never cold.",
            "Each film passes through two translators and a reader who checks that the lines can be read in the time they stay on screen.",
            "The hardest films, they say, are comedies: jokes that depend on a dialect rarely survive the trip into another language intact.",
        ],
        ["Jokes that depend on a dialect rarely survive the trip."],
        "Translators at work in the festival's subtitling room.",
        "Photo: Festival press office",
        ((30, 30, 50), (200, 160, 60)),
    ),
    (
        "gas-revenue-fund-first-report",
        "The gas revenue fund publishes its first accounts, and they raise questions",
        "The sovereign fund holds less than forecast; auditors flag a loan to a state company.",
        "economy",
        ["energy"],
        ["yoav-mizrahi"],
        60,
        None,
        "en",
        [
            "The fund was set up four years ago to keep a share of offshore gas revenue for future generations.",
            "Its first published accounts show assets about a fifth below the figure ministers gave parliament last year.",
            "The auditors' notes point to a loan to the state electricity company, made without the approval of the fund's board.",
        ],
        [],
        "The offshore platform seen from the coast.",
        "Photo: Yoav Mizrahi / The Levant Ledger",
        ((20, 50, 80), (120, 140, 160)),
    ),
    (
        "سدود-صغيرة-في-الوادي",
        "سدود صغيرة في الوادي تعيد المياه إلى الآبار",
        "بنى المزارعون عشرات الحواجز الحجرية على مجاري السيول، وبدأت مستويات الآبار بالارتفاع بعد شتاءين.",
        "climate-water",
        ["jordan-river"],
        ["nadia-saleh"],
        10,
        None,
        "ar",
        [
            "في كل شتاء كانت مياه السيول تندفع عبر الوادي وتختفي خلال ساعات. قبل ثلاث سنوات قرر المزارعون أن يبطئوها.",
            "بنوا أكثر من أربعين حاجزاً من الحجارة المحلية، لا يتجاوز ارتفاع الواحد منها متراً، فصارت المياه تتوقف خلفها وتتسرب إلى التربة.",
            "يقول مهندس في الجمعية الزراعية إن مستوى المياه في ثلاثة آبار قريبة ارتفع نحو مترين منذ ذلك الحين.",
            "ويحذر خبراء من أن القياسات ما زالت قليلة، وأن شتاءً جافاً واحداً قد يمحو المكاسب.",
        ],
        ["صارت المياه تتوقف خلف الحجارة وتتسرب إلى التربة."],
        "حاجز حجري على مجرى سيل في الوادي.",
        "تصوير: نادية صالح",
        ((150, 120, 70), (90, 130, 150)),
    ),
    (
        "the-drought-plan-parliament-votes-next",
        "What is in the drought plan parliament votes on next week",
        "Water quotas for farms, a new tariff for large users and a fund for leak repairs: the plan, line by line.",
        "climate-water",
        ["jordan-river", "elections"],
        ["nadia-saleh", "rania-khoury"],
        -20,
        None,
        "en",
        [
            "The plan runs to 86 pages. Most of it concerns how water is measured before it is shared.",
            "Farms above a certain size would receive a quota based on the crops they grew over the past five years, with a penalty tariff for water drawn beyond it.",
            "Cities would get a fund for repairing leaks, which the water ministry estimates lose a third of what enters the pipes.",
        ],
        [],
        "Cracked earth at the edge of the reservoir.",
        "Photo: Nadia Saleh / The Levant Ledger",
        ((170, 120, 60), (220, 200, 170)),
    ),
    (
        "app-store-rules-and-local-developers",
        "Local developers weigh the cost of the new app store rules",
        "Draft notes for an investigation into how payment rules affect small studios.",
        "technology",
        ["media"],
        ["omar-farid"],
        None,
        None,
        "en",
        [
            "Interviews so far: four studios, one payments company.",
            "Still to confirm: the figures on commission and the regulator's response.",
        ],
        [],
        "",
        "",
        ((80, 80, 80), (160, 160, 160)),
    ),
    # --- versions in other languages, and stories first written in Arabic or Hebrew ---
    (
        "مزارعو-الوادي-يستبدلون-قنوات-الغمر-بالتنقيط",
        "مزارعو الوادي يستبدلون قنوات الغمر بخطوط التنقيط مع انحسار النهر",
        "خفّضت جمعية تعاونية تضم 140 مزارعًا استهلاكها للمياه بمقدار الثلث خلال موسمين. الحفاظ على هذا التوفير أصعب.",
        "climate-water",
        ["jordan-river"],
        ["nadia-saleh"],
        4,
        1,
        "ar",
        [
            "في الخامسة صباحًا تكون غرفة المضخات عند طرف الجمعية التعاونية قد بدأت بالدوران. قبل عشرين عامًا كانت الساعة نفسها تعني فتح البوابات ومراقبة المياه البنية وهي تنتشر بين صفوف البندورة.",
            "اليوم تصل المياه عبر خطوط بلاستيكية سوداء، بضعة لترات في الساعة عند جذع كل نبتة. وتُظهر سجلات المزارعين الفرق: سحبت الجمعية من القناة في الموسم الماضي 31 في المئة أقل مما سحبته قبل ثلاث سنوات.",
            "<h2>أين يذهب التوفير</h2>",
            "يحذّر باحثون في علم المياه درسوا مشاريع مشابهة من أن الكفاءة قد تتبدد في التوسع: حين يحتاج كل حقل إلى مياه أقل، يغري ذلك بزراعة حقول أكثر.",
            "تقول رئيسة الجمعية إن الأعضاء صوّتوا على تجميد المساحة المزروعة خمس سنوات. «لم نوفّر المياه لننفقها من جديد»، قالت.",
        ],
        ["لم نوفّر المياه لننفقها من جديد."],
        "خطوط التنقيط بين صفوف شتلات البندورة في الوادي.",
        "تصوير: نادية صالح / The Levant Ledger",
        ((46, 110, 78), (196, 170, 92)),
    ),
    (
        "חקלאי-העמק-עוברים-לטפטוף",
        "חקלאי העמק מחליפים את תעלות ההצפה בטפטפות, והנהר הולך ומצטמק",
        "אגודה שיתופית של 140 מגדלים קיצצה בשליש את צריכת המים שלה בתוך שתי עונות. לשמור על החיסכון קשה יותר.",
        "climate-water",
        ["jordan-river"],
        ["nadia-saleh"],
        4,
        1,
        "he",
        [
            "בחמש בבוקר בית המשאבות בקצה האגודה כבר מזמזם. לפני עשרים שנה אותה שעה פירושה הייתה לפתוח סכרים ולראות מים חומים מתפשטים בין שורות העגבניות.",
            "היום המים מגיעים בצינורות פלסטיק שחורים, כמה ליטרים בשעה לרגלי כל צמח. הספרים של המגדלים מראים את השינוי: בעונה שעברה שאבה האגודה מהתעלה 31 אחוז פחות מאשר לפני שלוש שנים.",
            "<h2>לאן הולך החיסכון</h2>",
            "הידרולוגים שחקרו מיזמים דומים מזהירים שהיעילות עלולה להיבלע בהתרחבות: כשכל שדה צריך פחות מים, מתפתים לשתול עוד שדות.",
            'יושבת הראש של האגודה אומרת שהחברים הצביעו על הגבלת השטח המעובד לחמש שנים. "לא חסכנו את המים כדי לבזבז אותם שוב", אמרה.',
        ],
        ["לא חסכנו את המים כדי לבזבז אותם שוב."],
        "צינורות טפטוף בין שורות של שתילי עגבניות בעמק.",
        "צילום: נאדיה סאלח / The Levant Ledger",
        ((46, 110, 78), (196, 170, 92)),
    ),
    (
        "محادثات-الائتلاف-تتعثر-عند-ميزانية-البلديات",
        "محادثات الائتلاف تتعثر عند بند واحد في الموازنة: أموال البلدات",
        "تتفق ثلاثة أحزاب على الوزارات والبرنامج، لكنها لا تتفق على من يدفع ثمن جمع النفايات وإنارة الشوارع.",
        "politics",
        ["elections", "cities"],
        ["rania-khoury"],
        6,
        2,
        "ar",
        [
            "أمضى المفاوضون إحدى عشرة ساعة يوم الثلاثاء في قاعة اجتماعات بأحد الفنادق، وخرجوا متفقين على كل شيء تقريبًا باستثناء التحويلات إلى المجالس البلدية.",
            "يقول رؤساء بلديات البلدات الصغيرة إن الصيغة المعتمدة منذ عقد تتركهم عاجزين عن دفع كلفة الخدمات الأساسية. وتردّ المدن الكبرى بأنها تتحمل كلفة عمّال يأتون إليها يوميًا ويدفعون ضرائبهم في مكان آخر.",
            "<blockquote><p>الحكومة التي لا تستطيع جمع النفايات لن يُغفر لها أي شيء آخر تفعله.</p></blockquote>",
            "قال أحد المفاوضين، طالبًا عدم ذكر اسمه لأن المحادثات مستمرة، إن حلًا وسطًا يربط التحويلات بعدد السكان الذين تخدمهم البلدية خلال ساعات العمل مطروح على الطاولة.",
            "ومنح الرئيس الأحزاب مهلة حتى نهاية الشهر قبل أن تبدأ المشاورات من جديد.",
        ],
        ["السؤال ليس من يحكم، بل من يدفع ثمن إنارة الشوارع."],
        "مندوبون يغادرون الفندق بعد الساعة الحادية عشرة من المحادثات.",
        "تصوير: كريم أبو جودة",
        ((70, 60, 110), (210, 190, 160)),
    ),
    (
        "small-dams-bring-water-back-to-the-wells",
        "Small stone dams in the valley are bringing water back to the wells",
        "Farmers built dozens of stone barriers across the flood channels; after two winters, the wells have started to rise.",
        "climate-water",
        ["jordan-river"],
        ["nadia-saleh"],
        11,
        None,
        "en",
        [
            "Every winter the floodwater rushed through the valley and was gone within hours. Three years ago the farmers decided to slow it down.",
            "They built more than forty barriers from local stone, none of them higher than a metre, so that the water pools behind them and soaks into the ground.",
            "An engineer at the farmers' association says the water level in three nearby wells has risen by about two metres since then.",
            "Experts warn that the measurements are still few, and that a single dry winter could wipe out the gains.",
        ],
        ["The water pools behind the stones and soaks into the ground."],
        "A stone barrier across a flood channel in the valley.",
        "Photo: Nadia Saleh / The Levant Ledger",
        ((150, 120, 70), (90, 130, 150)),
    ),
    (
        "הנמל-שלא-ישן-לומד-לעבוד-בלי-משמרת-לילה",
        "הנמל שלא ישן לומד לעבוד בלי משמרת הלילה",
        "העגורנים האוטומטיים הכפילו את הקצב במסוף החדש. איגוד עובדי הנמל מנהל משא ומתן על מה שיבוא אחר כך.",
        "economy",
        ["labour"],
        ["yoav-mizrahi"],
        9,
        2,
        "he",
        [
            "העגורנים של המסוף החדש צבועים לבן, ורוב הזמן מפעילים אותם ממשרד במרחק שני קילומטרים.",
            "אוניות עוזבות עכשיו את הרציף אחרי קצת יותר מיממה, לעומת כמעט שלוש ברציף הישן, וחברות ספנות התחילו להעביר לכאן עגינות מנמלים אחרים במזרח הים התיכון.",
            "האיגוד שמייצג 1,200 עובדי נמל חתם באביב שעבר על הסכם שמבטיח שלא יהיו פיטורים כפויים עד 2028, בתמורה להסבה למפעילים מרחוק.",
            "פחות משליש מהמועמדים עברו עד עכשיו את הקורס. באיגוד אומרים שהמבחן מודד מהירות בסימולטור, לא היכרות עם הנמל.",
        ],
        ["העגורנים מהירים. השאלה היא מי יישב ליד ההגאים."],
        "עגורנים אוטומטיים במסוף המכולות החדש בשעת בין ערביים.",
        "צילום: יואב מזרחי / The Levant Ledger",
        ((30, 60, 100), (230, 140, 60)),
    ),
    (
        "שכר-הדירה-בחיפה-עולה-מהר-מהשכר",
        "שכר הדירה בחיפה עולה מהר יותר מהשכר, והסטודנטים עוברים לקריות",
        "בשלוש שנים עלה שכר הדירה הממוצע בעיר ב-18 אחוז. השכר עלה בתשעה.",
        "economy",
        ["cities"],
        ["yoav-mizrahi"],
        7,
        3,
        "he",
        [
            "בתחילת כל סמסטר לוח המודעות בכניסה לפקולטה מתמלא במודעות על חדרים להשכרה. השנה רובן מהקריות, לא מהכרמל.",
            "לפי נתוני הלשכה המרכזית לסטטיסטיקה, שכר הדירה הממוצע לדירת שלושה חדרים בחיפה עלה ב-18 אחוז מאז 2023, בזמן שהשכר הממוצע באזור עלה בתשעה אחוזים.",
            "העירייה אומרת שהיא מקדמת אלפי יחידות דיור חדשות ליד תחנות הרכבת. התושבים אומרים שעד שייבנו, הם כבר יגורו במקום אחר.",
        ],
        ["עד שייבנו, אנחנו כבר נגור במקום אחר."],
        "מודעות על חדרים להשכרה בלוח המודעות של האוניברסיטה.",
        "צילום: יואב מזרחי / The Levant Ledger",
        ((110, 90, 130), (220, 210, 190)),
    ),
    (
        "haifa-rents-outpace-wages",
        "Rents in Haifa are rising faster than wages, and students are moving to the suburbs",
        "In three years the average rent in the city rose by 18 percent. Wages rose by nine.",
        "economy",
        ["cities"],
        ["yoav-mizrahi"],
        7,
        None,
        "en",
        [
            "At the start of every semester the notice board at the faculty entrance fills with rooms to let. This year most of them are in the bay suburbs, not on the Carmel.",
            "According to the Central Bureau of Statistics, the average rent for a three-room flat in Haifa has risen by 18 percent since 2023, while average wages in the district rose by nine percent.",
            "The city says it is advancing thousands of new homes near the railway stations. Residents say that by the time they are built, they will be living somewhere else.",
        ],
        ["By the time they are built, we will be living somewhere else."],
        "Rooms to let on the university notice board.",
        "Photo: Yoav Mizrahi / The Levant Ledger",
        ((110, 90, 130), (220, 210, 190)),
    ),
    (
        "دور-النشر-الصغيرة-في-معرض-الكتاب",
        "دور النشر الصغيرة تراهن على الترجمة في معرض الكتاب",
        "ارتفعت كلفة الورق والشحن، فاختار ناشرون مستقلون أن يقدّموا عددًا أقل من العناوين، وأن يكون نصفها مترجمًا.",
        "culture",
        ["media"],
        ["omar-farid"],
        20,
        3,
        "ar",
        [
            "في الجناح الأصغر من المعرض تصطف كتب دار نشر لا يتجاوز عدد العاملين فيها أربعة أشخاص. نصف العناوين هذا العام روايات مترجمة عن التركية والفارسية والإسبانية.",
            "يقول صاحب الدار إن كلفة طباعة الكتاب الواحد تضاعفت تقريبًا منذ عام 2021، وإن القرّاء باتوا يشترون أقل لكنهم يختارون بعناية أكبر.",
            "ويرى مترجمون أن الإقبال على الأدب المترجم يمنحهم عملًا ثابتًا لأول مرة منذ سنوات، وإن بقيت الأجور متواضعة.",
        ],
        ["القرّاء يشترون أقل، لكنهم يختارون بعناية أكبر."],
        "زوار يتصفحون الكتب في جناح إحدى دور النشر المستقلة.",
        "تصوير: عمر فريد",
        ((120, 60, 50), (230, 210, 170)),
    ),
]


def _jpeg(
    colours: tuple[tuple[int, int, int], tuple[int, int, int]], *, size=(1200, 800), seed: int = 0
) -> bytes:
    """An abstract landscape in two colours: a real JPEG, made here."""
    top, bottom = colours
    width, height = size
    image = Image.new("RGB", size, top)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line(
            [(0, y), (width, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    # A horizon of hills whose shape depends on `seed`, so each photo differs.
    for layer in range(3):
        shade = tuple(max(0, int(c * (0.55 + 0.15 * layer))) for c in bottom)
        base = int(height * (0.55 + 0.12 * layer))
        points = [(0, height)]
        for step in range(0, width + 100, 100):
            wave = ((seed * 37 + step * (layer + 3)) % 160) - 80
            points.append((step, base + wave))
        points.append((width, height))
        draw.polygon(points, fill=shade)
    draw.ellipse(
        [width * 0.7, height * 0.12, width * 0.7 + 110, height * 0.12 + 110], fill=(250, 235, 200)
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def _portrait(colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (240, 240), (235, 230, 220))
    draw = ImageDraw.Draw(image)
    draw.ellipse([70, 40, 170, 140], fill=colour)
    draw.ellipse([30, 150, 210, 330], fill=colour)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _two_factor_lines(user) -> list[str]:
    """How the demo login gets past the two-factor gate (newsroom.security)."""
    from newsroom.security import has_confirmed_device

    if has_confirmed_device(user):
        return [
            "  two-factor: the sign-in form also asks for the current code of the authenticator",
            "  app you set up before, or one of your recovery codes. Lost both? Remove the device,",
            "  and the next sign-in emails a link to set up a new one:",
            '    DJANGO_DEBUG=1 .venv/bin/python manage.py shell -c "from django_otp.plugins.otp_totp.models import '
            f"TOTPDevice; TOTPDevice.objects.filter(user__username='{user.username}').delete()\"",
        ]
    email_note = (
        "the site prints it in its terminal: email goes to the console"
        if settings.EMAIL_BACKEND.endswith("console.EmailBackend")
        else "look for it where EMAIL_BACKEND delivers"
    )
    return [
        "  two-factor: every staff account needs an authenticator app (TOTP). The first sign-in",
        "  takes the username and password only (leave the code empty); the admin then emails a",
        f"  one-time set-up link to {user.email} ({email_note}).",
        "  Open it in the same browser: scan the QR code (or type the secret) into any",
        "  authenticator app, enter its code, and keep the ten recovery codes it shows. Later",
        "  sign-ins ask for the app's current code (or one recovery code) as well.",
    ]


def _languages_line() -> str:
    counts = Counter(row[8] for row in ARTICLES)
    return ", ".join(
        f"{counts[code]} {get_language_info(code)['name']}" for code, _name in settings.LANGUAGES
    )


def apps_demo_seed(*, now: datetime) -> list[str]:
    """Ask each installed app's `demo.seed_demo` for its data, in INSTALLED_APPS order."""
    lines: list[str] = []
    for app_config in apps.get_app_configs():
        if not module_has_submodule(app_config.module, "demo"):
            continue
        seed = getattr(import_module(f"{app_config.name}.demo"), "seed_demo", None)
        if seed is not None:  # newsroom.demo holds shared helpers, not a demo of its own
            lines += seed(now=now)
    return lines


class Command(BaseCommand):
    help = "Load the demo newsroom (idempotent) and print how to log in."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        now = timezone.now()
        categories = {}
        for order, (slug, name, description) in enumerate(CATEGORIES):
            category, _ = Category.objects.get_or_create(slug=slug, defaults={"name": name})
            category.name, category.description, category.order = name, description, order
            category.translations = NAMES[slug]
            categories[slug] = services.section_save(obj=category)
        topics = {}
        for slug, name, description in TOPICS:
            topic, _ = Topic.objects.get_or_create(slug=slug, defaults={"name": name})
            topic.name, topic.description = name, description
            topic.translations = NAMES[slug]
            topics[slug] = services.section_save(obj=topic)
        authors = {}
        for slug, name, bio, colour in AUTHORS:
            author, _ = Author.objects.get_or_create(slug=slug, defaults={"name": name})
            author.name, author.bio = name, bio
            author.translations = NAMES[slug]
            if not author.photo or not author.photo.storage.exists(author.photo.name):
                author.photo.save(f"{slug}.jpg", ContentFile(_portrait(colour)), save=False)
            authors[slug] = services.section_save(obj=author)

        saved: dict[str, Article] = {}
        for index, (
            slug,
            headline,
            dek,
            category,
            topic_slugs,
            author_slugs,
            hours_ago,
            rank,
            language,
            paragraphs,
            quotes,
            caption,
            credit,
            colours,
        ) in enumerate(ARTICLES):
            article = Article.objects.filter(slug=slug).first() or Article(slug=slug)
            article.headline, article.dek, article.language = headline, dek, language
            article.body = "".join(p if p.startswith("<") else f"<p>{p}</p>" for p in paragraphs)
            article.pull_quotes = quotes
            article.category = categories[category]
            article.top_story_rank = rank
            if hours_ago is None:
                article.status, article.published_at = Article.Status.DRAFT, None
            elif hours_ago < 0:
                article.status = Article.Status.SCHEDULED
                article.published_at = now - timedelta(hours=hours_ago)
            else:
                article.status = Article.Status.PUBLISHED
                article.published_at = now - timedelta(hours=hours_ago)
            if caption and (
                not article.lead_photo
                or not article.lead_photo.storage.exists(article.lead_photo.name)
            ):
                article.lead_photo.save(
                    f"demo-{index + 1}.jpg", ContentFile(_jpeg(colours, seed=index)), save=False
                )
            article.lead_photo_alt = caption
            article.lead_photo_caption = caption
            article.lead_photo_credit = credit
            original = saved.get(TRANSLATIONS.get(slug, ""))
            saved[slug] = services.article_save(
                article=article,
                authors=[authors[a] for a in author_slugs],
                topics=[topics[t] for t in topic_slugs],
                translation_of=original,
            )

        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        editor = user_model.objects.filter(username="editor").first() or user_model(
            username="editor"
        )
        editor.email = editor.email or "editor@newsroom.example"
        editor.is_staff = editor.is_superuser = editor.is_active = True
        editor.set_password(password)
        editor.save()

        lines = [
            f"Newsroom: {len(CATEGORIES)} categories, {len(TOPICS)} topics, {len(AUTHORS)} authors, "
            f"{len(ARTICLES)} articles in {_languages_line()}, {len(TRANSLATIONS)} of them "
            "versions of a story in another language (one scheduled, one draft).",
            *apps_demo_seed(now=now),
            "",
            f"Open the site:   {absolute(reverse('home'))}",
            f"Staff admin:     {absolute(reverse('admin:index'))}",
            "  username: editor",
            f"  password: {password}",
            *_two_factor_lines(editor),
        ]
        for line in lines:
            self.stdout.write(line)
