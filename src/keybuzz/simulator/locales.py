"""Word lists per language for buyers, addresses and products. Unicode on purpose.

Lists are written as ``|``-separated strings (cities as ``name;postal code;region``) so that
the data stays readable in a few lines per language.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    postal_code: str
    region: str


@dataclass(frozen=True, slots=True)
class Locale:
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    streets: tuple[str, ...]
    cities: tuple[City, ...]
    products: tuple[str, ...]
    variants: tuple[str, ...]
    gift_messages: tuple[str, ...]
    phone_prefix: str
    number_before_street: bool


def _split(words: str) -> tuple[str, ...]:
    return tuple(word.strip() for word in words.split("|"))


def _locale(
    *,
    first: str,
    last: str,
    streets: str,
    cities: str,
    products: str,
    variants: str,
    gifts: str,
    phone: str,
    number_before_street: bool = False,
) -> Locale:
    return Locale(
        first_names=_split(first),
        last_names=_split(last),
        streets=_split(streets),
        cities=tuple(City(*city.split(";")) for city in _split(cities)),
        products=_split(products),
        variants=_split(variants),
        gift_messages=_split(gifts),
        phone_prefix=phone,
        number_before_street=number_before_street,
    )


LOCALES: dict[str, Locale] = {
    "fr": _locale(
        first="Zoé|Hélène|François|Noël|Chloé|Loïc|Anaïs|Jérôme|Inès|Léa|Benoît|Maëlle|Céline|"
        "Étienne|Agnès|Raphaël",
        last="Lefèvre|Dubois|Moreau|Girard|Rousseau|Béranger|Mercier|Faure|Lemaître|Chevalier|"
        "Gauthier|N'Diaye|Lacroix|Brémond",
        streets="rue de la Paix|avenue des Champs-Élysées|boulevard Saint-Germain|"
        "rue du Faubourg Saint-Honoré|place Bellecour|rue Sainte-Catherine|chemin des Vignes|"
        "allée des Tilleuls|quai de la Fosse|rue Émile Zola",
        cities="Paris;75008;Île-de-France|Lyon;69002;Auvergne-Rhône-Alpes|"
        "Marseille;13001;Provence-Alpes-Côte d'Azur|Bordeaux;33000;Nouvelle-Aquitaine|"
        "Lille;59000;Hauts-de-France|Nantes;44000;Pays de la Loire|"
        "Besançon;25000;Bourgogne-Franche-Comté|Saint-Étienne;42000;Auvergne-Rhône-Alpes",
        products="Théière en fonte émaillée|Coque de téléphone en silicone|Lampe de chevet LED|"
        "Couteau de cuisine en acier inoxydable|Sac à dos imperméable|"
        "Écouteurs sans fil Bluetooth|Bougie parfumée à la lavande|Tapis de yoga antidérapant|"
        "Câble USB-C tressé|Gourde isotherme|Plaid en laine mérinos|Cafetière à piston",
        variants="noir|blanc|bleu marine|rouge cerise|vert sauge|1 L|2 m|lot de 2",
        gifts="Joyeux anniversaire ! 🎂|Bonne fête maman ❤️|Félicitations pour ton diplôme",
        phone="+33 6",
        number_before_street=True,
    ),
    "de": _locale(
        first="Jürgen|Björn|Jörg|Müge|Günther|Käthe|Lukas|Sören|Anja|Maximilian|Lena|Özlem|"
        "Friederike",
        last="Müller|Schäfer|Weiß|Groß|Köhler|Bäcker|Schröder|Krüger|Fuß|Hoffmann|Wagner|Şahin",
        streets="Hauptstraße|Schlossallee|Bahnhofstraße|Königsallee|Lindenstraße|Gartenweg|"
        "Mühlenstraße|Am Fröbelpark",
        cities="Berlin;10117;Berlin|München;80331;Bayern|Köln;50667;Nordrhein-Westfalen|"
        "Düsseldorf;40213;Nordrhein-Westfalen|Nürnberg;90402;Bayern|"
        "Lübeck;23552;Schleswig-Holstein",
        products="Küchenmesser aus Edelstahl|Wasserdichter Rucksack|Bluetooth-Kopfhörer|"
        "Thermoskanne aus Edelstahl|Yogamatte rutschfest|LED-Nachttischlampe|"
        "Geflochtenes USB-C-Kabel|Duftkerze Lavendel|Merinowolldecke",
        variants="schwarz|weiß|dunkelblau|grün|1 Liter|2 Meter|2er-Pack",
        gifts="Alles Gute zum Geburtstag! 🎉|Frohe Weihnachten|Viel Glück!",
        phone="+49 151",
    ),
    "es": _locale(
        first="José|Iñaki|María|Begoña|Ángel|Lucía|Nuria|Raúl|Sofía|Jesús|Mónica|Íñigo",
        last="Muñoz|Peña|García|Fernández|López|Núñez|Martínez|Ibáñez|Sánchez|Gómez",
        streets="Calle Mayor|Gran Vía|Avenida de la Constitución|Paseo de Gràcia|"
        "Calle de Alcalá|Plaza de España|Calle del Olmo",
        cities="Madrid;28013;Madrid|Barcelona;08007;Cataluña|Sevilla;41004;Andalucía|"
        "Málaga;29015;Andalucía|A Coruña;15001;Galicia|València;46002;Comunidad Valenciana",
        products="Cuchillo de cocina de acero|Mochila impermeable|Auriculares inalámbricos|"
        "Botella térmica|Esterilla de yoga antideslizante|Lámpara de noche LED|"
        "Cable USB-C trenzado|Vela aromática de lavanda",
        variants="negro|blanco|azul marino|rojo|1 litro|2 metros|pack de 2",
        gifts="¡Feliz cumpleaños! 🎈|Con cariño, Begoña|¡Enhorabuena!",
        phone="+34 6",
    ),
    "it": _locale(
        first="Niccolò|Luca|Giulia|Lucrezia|Mattia|Chiara|Andrea|Elisa|Tommaso|Gioele|Noemi",
        last="Bianchi|Rossi|Esposito|Ricci|De Luca|Galli|Colombo|Fabbri|Lo Russo|D'Angelo",
        streets="Via Roma|Corso Vittorio Emanuele II|Via Garibaldi|Piazza del Duomo|"
        "Via dei Mille|Viale Europa|Via Nazionale",
        cities="Roma;00184;Lazio|Milano;20121;Lombardia|Napoli;80134;Campania|"
        "Torino;10121;Piemonte|Forlì;47121;Emilia-Romagna|Cantù;22063;Lombardia",
        products="Coltello da cucina in acciaio|Zaino impermeabile|Cuffie senza fili|"
        "Borraccia termica|Tappetino yoga antiscivolo|Lampada da comodino LED|"
        "Cavo USB-C intrecciato|Caffettiera moka",
        variants="nero|bianco|blu|rosso|1 litro|2 metri|confezione da 2",
        gifts="Buon compleanno! 🎁|Tanti auguri di cuore|Congratulazioni!",
        phone="+39 34",
    ),
    "en": _locale(
        first="Siobhán|Oliver|Amelia|Niamh|Harry|Chloë|Seán|Isla|Aoife|George|Zoë|Rhys",
        last="O'Brien|Smith|Jones|Taylor|Ní Bhriain|Brown|Williams|Evans|Thomas|"
        "Ó Súilleabháin|Wright",
        streets="High Street|Station Road|Church Lane|Victoria Road|King's Road|Mill Lane|"
        "Queen Street",
        cities="London;SW1A 1AA;Greater London|Manchester;M1 1AE;Greater Manchester|"
        "Bristol;BS1 4DJ;Bristol|Edinburgh;EH1 1YZ;Scotland|Cardiff;CF10 1EP;Wales|"
        "Dublin;D02 X285;Leinster",
        products="Stainless Steel Chef's Knife|Waterproof Backpack|Wireless Earbuds|"
        "Insulated Water Bottle|Non-Slip Yoga Mat|LED Bedside Lamp|Braided USB-C Cable|"
        "Lavender Scented Candle|Merino Wool Throw",
        variants="black|white|navy|red|1 L|2 m|2-pack",
        gifts="Happy birthday! 🎂|Merry Christmas, love from us|Congratulations!",
        phone="+44 7700",
        number_before_street=True,
    ),
    "nl": _locale(
        first="Daan|Sanne|Eva|Thijs|Fenna|Bram|Ilse",
        last="de Vries|van den Berg|Jansen|Bakker|Visser|van Dijk",
        streets="Kerkstraat|Dorpsstraat|Stationsweg|Prinsengracht|Molenweg",
        cities="Amsterdam;1016 GV;Noord-Holland|Utrecht;3511 AB;Utrecht|"
        "Rotterdam;3011 AD;Zuid-Holland",
        products="Waterdichte rugzak|Draadloze oordopjes|Thermosfles|Yogamat antislip",
        variants="zwart|wit|blauw|2 stuks",
        gifts="Gefeliciteerd! 🎉",
        phone="+31 6",
    ),
    "sv": _locale(
        first="Åsa|Björn|Märta|Örjan|Linnéa|Göran",
        last="Andersson|Söderberg|Åkesson|Lindström|Nyström",
        streets="Storgatan|Kungsgatan|Drottninggatan|Skolvägen",
        cities="Stockholm;111 52;Stockholm|Göteborg;411 05;Västra Götaland|Malmö;211 20;Skåne",
        products="Vattentät ryggsäck|Trådlösa hörlurar|Termosflaska|Yogamatta",
        variants="svart|vit|blå|2-pack",
        gifts="Grattis på födelsedagen! 🎈",
        phone="+46 70",
    ),
    "pl": _locale(
        first="Łukasz|Małgorzata|Paweł|Zofia|Michał|Agnieszka|Jędrzej",
        last="Wójcik|Kowalczyk|Łęcka|Nowak|Zieliński|Wiśniewska",
        streets="ulica Długa|ulica Piotrkowska|aleja Jerozolimskie|ulica Świętojańska",
        cities="Warszawa;00-001;mazowieckie|Kraków;30-001;małopolskie|Łódź;90-001;łódzkie|"
        "Gdańsk;80-001;pomorskie",
        products="Wodoodporny plecak|Słuchawki bezprzewodowe|Butelka termiczna|Mata do jogi",
        variants="czarny|biały|niebieski|zestaw 2 szt.",
        gifts="Wszystkiego najlepszego! 🎁",
        phone="+48 600",
    ),
    "ja": _locale(
        first="太郎|花子|翔太|美咲|健一|さくら",
        last="佐藤|鈴木|高橋|田中|渡辺|伊藤",
        streets="神南|銀座|梅田|栄",
        cities="渋谷区;150-0041;東京都|中央区;104-0061;東京都|大阪市北区;530-0001;大阪府|"
        "名古屋市中区;460-0008;愛知県",
        products="防水バックパック|ワイヤレスイヤホン|ステンレス製水筒|ヨガマット",
        variants="ブラック|ホワイト|ネイビー|2個セット",
        gifts="お誕生日おめでとう 🎂",
        phone="+81 90",
        number_before_street=False,
    ),
}
