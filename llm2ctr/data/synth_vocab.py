"""The synthetic catalogue's vocabulary: categories, product types, brands, series and attributes.

Kept apart from the generator so the words can grow without touching the sampling code. The
categories come in complement pairs (a phone and its case) listed next to each other, so taking
the first ``n_categories`` keeps both halves of each pair when ``n_categories`` is even.
"""

from __future__ import annotations

from dataclasses import dataclass

COLOURS = ("black", "white", "grey", "blue", "red", "green", "silver", "pink", "navy", "beige")


@dataclass(frozen=True)
class Category:
    """One catalogue category. ``title`` is a ``str.format`` template over the item's attributes."""

    name: str
    types: tuple[str, ...]
    brands: dict[str, tuple[str, ...]]  # brand -> series names
    numbers: tuple[str, ...]  # model numbers appended to a series ("40" in "Pegasus 40")
    variants: tuple[str, ...]  # size / storage / capacity ...
    variant_label: str  # how a variant reads in a title and a query: "size {}" or "{}"
    materials: tuple[str, ...]
    price: tuple[float, float]  # price range (lognormal spread inside it)
    title: str
    complements: tuple[str, ...] = ()
    extras: tuple[str, ...] = ("",)  # e.g. "men's" / "women's"
    colours: tuple[str, ...] = COLOURS


_SHOE = "{brand} {series} {number} {extra} {type}, {colour}, size {variant}"
_DEVICE = "{brand} {series} {number} {type}, {variant}, {colour}"
_THING = "{brand} {series} {type}, {material}, {colour}, {variant}"

CATEGORIES: tuple[Category, ...] = (
    Category("running shoes", ("running shoe", "trail running shoe", "racing shoe"),
             {"Nike": ("Air Zoom Pegasus", "Vaporfly", "React Infinity"), "Adidas": ("Ultraboost", "Adizero Boston"),
              "Asics": ("Gel-Nimbus", "Gel-Kayano", "Novablast"), "Brooks": ("Ghost", "Glycerin"),
              "New Balance": ("Fresh Foam 1080", "FuelCell Rebel"), "Hoka": ("Clifton", "Speedgoat")},
             ("3", "4", "5", "9", "10", "40", "41"), tuple(str(s) for s in range(36, 47)), "size {}",
             ("mesh", "knit", "synthetic"), (60, 220), _SHOE, ("sports socks",), ("men's", "women's")),
    Category("sports socks", ("running socks", "crew socks", "ankle socks"),
             {"Nike": ("Dri-FIT", "Spark"), "Adidas": ("Cushioned", "Performance"), "Falke": ("RU4", "TE2"),
              "Stance": ("Run Light", "Athletic"), "Balega": ("Hidden Comfort", "Blister Resist")},
             ("",), ("S", "M", "L", "XL"), "size {}", ("cotton", "merino wool", "polyester"), (8, 30),
             "{brand} {series} {extra} {type}, {material}, {colour}, size {variant}", ("running shoes",),
             ("men's", "women's")),
    Category("smartphones", ("smartphone", "5G smartphone", "foldable phone"),
             {"Apple": ("iPhone",), "Samsung": ("Galaxy S", "Galaxy A", "Galaxy Z Fold"), "Xiaomi": ("Redmi Note", "Mi"),
              "Google": ("Pixel",), "OnePlus": ("Nord",), "Motorola": ("Edge", "Moto G")},
             ("8", "9", "13", "14", "15", "23", "24"), ("64GB", "128GB", "256GB", "512GB"), "{}",
             ("aluminium", "glass"), (150, 1500), _DEVICE, ("phone cases", "headphones")),
    Category("phone cases", ("phone case", "wallet case", "rugged case"),
             {"Spigen": ("Tough Armor", "Liquid Air"), "OtterBox": ("Defender", "Symmetry"), "Apple": ("MagSafe",),
              "ESR": ("Classic",), "Casetify": ("Impact",)},
             ("",), ("iPhone 15", "iPhone 14", "Galaxy S24", "Pixel 8", "Redmi Note 13"), "for {}",
             ("silicone", "leather", "polycarbonate"), (10, 60), _THING, ("smartphones",)),
    Category("laptops", ("laptop", "gaming laptop", "2-in-1 laptop"),
             {"Apple": ("MacBook Air", "MacBook Pro"), "Dell": ("XPS", "Inspiron"), "Lenovo": ("ThinkPad X1", "IdeaPad"),
              "HP": ("Spectre", "Pavilion"), "Asus": ("Zenbook", "ROG Zephyrus"), "Acer": ("Swift", "Nitro")},
             ("13", "14", "15", "16"), ("8GB RAM 256GB SSD", "16GB RAM 512GB SSD", "32GB RAM 1TB SSD"), "{}",
             ("aluminium", "plastic"), (400, 3000), _DEVICE, ("laptop bags",)),
    Category("laptop bags", ("laptop backpack", "laptop sleeve", "messenger bag"),
             {"Samsonite": ("Guardit", "Pro-DLX"), "Targus": ("CitySmart", "Classic"), "Incase": ("Icon", "City"),
              "Herschel": ("Little America", "Anchor"), "Tomtoc": ("Urban",)},
             ("",), ("13 inch", "14 inch", "15.6 inch", "17 inch"), "{}", ("nylon", "polyester", "leather"),
             (25, 180), _THING, ("laptops",)),
    Category("televisions", ("smart TV", "OLED TV", "QLED TV"),
             {"Samsung": ("Crystal UHD", "Neo QLED"), "LG": ("OLED evo", "NanoCell"), "Sony": ("Bravia",),
              "TCL": ("C Series", "P Series"), "Hisense": ("U8", "A6")},
             ("", "2023", "2024"), ("43 inch", "55 inch", "65 inch", "75 inch"), "{}", ("plastic", "metal"),
             (250, 3000), "{brand} {series} {number} {variant} {type}, {colour}", ("tv wall mounts",)),
    Category("tv wall mounts", ("TV wall mount", "full motion TV mount", "tilting TV mount"),
             {"Sanus": ("Premium", "Advanced"), "Vogel's": ("Comfort", "Elite"), "Mounting Dream": ("MD",),
              "Echogear": ("EGLF",), "Kanto": ("PS",)},
             ("",), ("32-55 inch", "42-70 inch", "55-85 inch"), "for {} TVs", ("steel", "aluminium"),
             (25, 250), _THING, ("televisions",)),
    Category("cameras", ("mirrorless camera", "DSLR camera", "compact camera"),
             {"Canon": ("EOS R", "EOS", "PowerShot"), "Nikon": ("Z", "D"), "Sony": ("Alpha", "ZV"),
              "Fujifilm": ("X-T", "X100"), "Panasonic": ("Lumix",)},
             ("5", "6", "7", "50", "90", "100"), ("body only", "with 18-55mm lens", "with 24-105mm lens"), "{}",
             ("magnesium alloy", "polycarbonate"), (400, 3500), _DEVICE, ("memory cards",)),
    Category("memory cards", ("SD card", "microSD card", "CFexpress card"),
             {"SanDisk": ("Extreme", "Extreme PRO", "Ultra"), "Samsung": ("EVO Plus", "PRO Plus"), "Lexar": ("Professional",),
              "Kingston": ("Canvas Go",), "Sony": ("Tough",)},
             ("",), ("64GB", "128GB", "256GB", "512GB"), "{}", ("plastic",), (10, 200), _THING, ("cameras",)),
    Category("coffee machines", ("espresso machine", "drip coffee maker", "capsule coffee machine"),
             {"De'Longhi": ("Dedica", "Magnifica"), "Breville": ("Barista Express", "Bambino"),
              "Nespresso": ("Vertuo", "Essenza"), "Philips": ("LatteGo", "3200"), "Krups": ("Evidence",)},
             ("", "Plus", "Pro"), ("1 litre", "1.5 litre", "2 litre"), "{}", ("stainless steel", "plastic"),
             (60, 900), "{brand} {series} {number} {type}, {material}, {colour}, {variant}", ("coffee beans",)),
    Category("coffee beans", ("whole bean coffee", "ground coffee", "espresso beans"),
             {"Lavazza": ("Super Crema", "Qualita Oro"), "Illy": ("Classico", "Intenso"), "Starbucks": ("Pike Place", "Veranda"),
              "Kimbo": ("Aroma Gold",), "Peet's": ("Major Dickason's",)},
             ("",), ("250g", "500g", "1kg"), "{}", ("arabica", "robusta blend"), (6, 40),
             "{brand} {series} {type}, {material}, {variant}", ("coffee machines",), colours=("",)),
    Category("bicycles", ("road bike", "mountain bike", "city bike"),
             {"Trek": ("Domane", "Marlin", "FX"), "Specialized": ("Allez", "Rockhopper"), "Giant": ("Contend", "Talon"),
              "Cannondale": ("CAAD", "Trail"), "Cube": ("Attain", "Aim")},
             ("", "2", "4", "5", "7"), ("S", "M", "L", "XL"), "frame size {}", ("aluminium", "carbon", "steel"),
             (400, 4000), "{brand} {series} {number} {type}, {material}, {colour}, frame size {variant}",
             ("bike helmets",)),
    Category("bike helmets", ("road bike helmet", "mountain bike helmet", "commuter helmet"),
             {"Giro": ("Syntax", "Fixture"), "Bell": ("Z20", "Spark"), "POC": ("Ventral", "Omne"),
              "Specialized": ("Align", "Chamonix"), "Kask": ("Protone",)},
             ("", "MIPS"), ("S", "M", "L"), "size {}", ("EPS foam", "polycarbonate"), (40, 300),
             "{brand} {series} {number} {type}, {colour}, size {variant}", ("bicycles",)),
    Category("tents", ("camping tent", "backpacking tent", "family tent"),
             {"Coleman": ("Sundome", "Skydome"), "MSR": ("Hubba Hubba", "Elixir"), "Big Agnes": ("Copper Spur",),
              "Vango": ("Odyssey",), "Naturehike": ("Cloud Up", "Mongar")},
             ("", "2", "3"), ("1 person", "2 person", "4 person", "6 person"), "{}", ("polyester", "nylon"),
             (50, 600), _THING, ("sleeping bags",)),
    Category("sleeping bags", ("sleeping bag", "down sleeping bag", "mummy sleeping bag"),
             {"Marmot": ("Trestles", "Never Summer"), "The North Face": ("Eco Trail", "Cat's Meow"), "Vango": ("Nitestar",),
              "Sea to Summit": ("Spark", "Trek"), "Coleman": ("Brazos",)},
             ("",), ("-5C", "0C", "5C", "10C"), "comfort {}", ("down", "synthetic fill"), (30, 450), _THING,
             ("tents",)),
    Category("gaming consoles", ("game console", "handheld console", "console bundle"),
             {"Sony": ("PlayStation 5", "PlayStation Portal"), "Microsoft": ("Xbox Series X", "Xbox Series S"),
              "Nintendo": ("Switch", "Switch OLED"), "Valve": ("Steam Deck",), "Asus": ("ROG Ally",)},
             ("", "Slim", "Digital"), ("512GB", "1TB", "2TB"), "{}", ("plastic",), (250, 800), _DEVICE,
             ("game controllers",)),
    Category("game controllers", ("wireless controller", "pro controller", "arcade stick"),
             {"Sony": ("DualSense", "DualSense Edge"), "Microsoft": ("Xbox Wireless", "Elite Series 2"),
              "Nintendo": ("Joy-Con", "Pro"), "8BitDo": ("Ultimate", "Pro 2"), "Razer": ("Wolverine",)},
             ("",), ("for PS5", "for Xbox", "for Switch", "for PC"), "{}", ("plastic",), (25, 200), _THING,
             ("gaming consoles",)),
    Category("printers", ("inkjet printer", "laser printer", "all-in-one printer"),
             {"HP": ("OfficeJet", "LaserJet", "DeskJet"), "Canon": ("PIXMA", "imageCLASS"), "Epson": ("EcoTank", "WorkForce"),
              "Brother": ("HL", "MFC")}, ("3", "8", "4100", "2350"), ("wireless", "duplex", "wireless duplex"), "{}",
             ("plastic",), (70, 700), _DEVICE, ("ink cartridges",)),
    Category("ink cartridges", ("ink cartridge", "toner cartridge", "ink bottle"),
             {"HP": ("63", "305", "953"), "Canon": ("PG-545", "CLI-581"), "Epson": ("T502", "102"),
              "Brother": ("LC3211", "TN2420")}, ("",), ("black", "tri-colour", "multipack", "XL black"), "{}",
             ("ink",), (12, 120), "{brand} {series} {type}, {variant}", ("printers",), colours=("",)),
    Category("dresses", ("summer dress", "maxi dress", "cocktail dress"),
             {"Zara": ("Linen", "Satin"), "H&M": ("Divided", "Conscious"), "Mango": ("Essential",),
              "Reformation": ("Juliette", "Nadira"), "Ralph Lauren": ("Polo",)},
             ("",), ("XS", "S", "M", "L", "XL"), "size {}", ("cotton", "linen", "silk", "viscose"), (25, 350),
             "{brand} {series} {type}, {material}, {colour}, size {variant}", ("handbags",)),
    Category("handbags", ("tote bag", "crossbody bag", "shoulder bag"),
             {"Michael Kors": ("Jet Set", "Mercer"), "Coach": ("Tabby", "Willow"), "Kate Spade": ("Knott",),
              "Longchamp": ("Le Pliage",), "Fossil": ("Jolie", "Parker")},
             ("",), ("small", "medium", "large"), "{}", ("leather", "canvas", "nylon"), (60, 600),
             "{brand} {series} {variant} {type}, {material}, {colour}", ("dresses",)),
    Category("watches", ("smartwatch", "analog watch", "dive watch"),
             {"Apple": ("Watch Series", "Watch Ultra"), "Garmin": ("Forerunner", "Fenix"), "Seiko": ("Presage", "Prospex"),
              "Casio": ("G-Shock", "Edifice"), "Samsung": ("Galaxy Watch",)},
             ("2", "6", "9", "265", "955"), ("40mm", "42mm", "44mm", "46mm"), "{}",
             ("stainless steel", "titanium", "resin"), (50, 1200), _DEVICE, ("watch straps",)),
    Category("watch straps", ("watch strap", "sport band", "metal bracelet"),
             {"Apple": ("Sport Loop", "Solo Loop"), "Garmin": ("QuickFit",), "Barton": ("Elite Silicone",),
              "Hirsch": ("Liberty",), "Spigen": ("Lite Fit",)}, ("",), ("20mm", "22mm", "41mm", "45mm"), "{}",
             ("silicone", "leather", "nylon", "steel"), (10, 120), _THING, ("watches",)),
    Category("kitchen knives", ("chef's knife", "santoku knife", "knife set"),
             {"Wusthof": ("Classic", "Gourmet"), "Zwilling": ("Pro", "Four Star"), "Global": ("G",),
              "Shun": ("Classic", "Premier"), "Victorinox": ("Fibrox",)},
             ("", "2", "8"), ("15cm", "20cm", "3 piece", "7 piece"), "{}", ("stainless steel", "Damascus steel"),
             (30, 400), _THING, ("cutting boards",)),
    Category("cutting boards", ("cutting board", "chopping block", "board set"),
             {"John Boos": ("Maple", "Walnut"), "Epicurean": ("Kitchen Series",), "OXO": ("Good Grips",),
              "Joseph Joseph": ("Index",), "Totally Bamboo": ("Classic",)}, ("",),
             ("small", "medium", "large"), "{}", ("maple", "bamboo", "plastic", "walnut"), (15, 200),
             "{brand} {series} {variant} {type}, {material}", ("kitchen knives",), colours=("",)),
    Category("headphones", ("wireless headphones", "noise cancelling headphones", "earbuds"),
             {"Sony": ("WH-1000XM", "WF-1000XM"), "Bose": ("QuietComfort", "SoundLink"), "Apple": ("AirPods", "AirPods Pro"),
              "Sennheiser": ("Momentum",), "JBL": ("Tune", "Live")}, ("2", "3", "4", "5", "45"),
             ("over-ear", "on-ear", "in-ear"), "{}", ("plastic", "aluminium"), (30, 550), _DEVICE,
             ("smartphones",)),
)
