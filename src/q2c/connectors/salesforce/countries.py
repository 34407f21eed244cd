"""ISO-3166 alpha-2 codes for the country names Salesforce orgs keep in ``BillingCountry``.

Orgs without State and Country/Territory Picklists store whatever a user typed ("Germany",
"USA", "U.K."); with the picklists the code sits in ``BillingCountryCode``. The canonical model
wants alpha-2, so names, common aliases and alpha-3 codes are mapped here. The names follow the
tz database's ``iso3166.tab`` with ISO's short English names for the few it abbreviates.
Data, not logic.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["COUNTRY_NAMES", "country_code", "country_name"]

_TABLE = """
AD Andorra
AE United Arab Emirates
AF Afghanistan
AG Antigua and Barbuda
AI Anguilla
AL Albania
AM Armenia
AO Angola
AQ Antarctica
AR Argentina
AS American Samoa
AT Austria
AU Australia
AW Aruba
AX Åland Islands
AZ Azerbaijan
BA Bosnia and Herzegovina
BB Barbados
BD Bangladesh
BE Belgium
BF Burkina Faso
BG Bulgaria
BH Bahrain
BI Burundi
BJ Benin
BL Saint Barthélemy
BM Bermuda
BN Brunei Darussalam
BO Bolivia
BQ Caribbean NL
BR Brazil
BS Bahamas
BT Bhutan
BV Bouvet Island
BW Botswana
BY Belarus
BZ Belize
CA Canada
CC Cocos (Keeling) Islands
CD Congo, Democratic Republic of the
CF Central African Republic
CG Congo
CH Switzerland
CI Côte d'Ivoire
CK Cook Islands
CL Chile
CM Cameroon
CN China
CO Colombia
CR Costa Rica
CU Cuba
CV Cape Verde
CW Curaçao
CX Christmas Island
CY Cyprus
CZ Czechia
DE Germany
DJ Djibouti
DK Denmark
DM Dominica
DO Dominican Republic
DZ Algeria
EC Ecuador
EE Estonia
EG Egypt
EH Western Sahara
ER Eritrea
ES Spain
ET Ethiopia
FI Finland
FJ Fiji
FK Falkland Islands
FM Micronesia
FO Faroe Islands
FR France
GA Gabon
GB United Kingdom
GD Grenada
GE Georgia
GF French Guiana
GG Guernsey
GH Ghana
GI Gibraltar
GL Greenland
GM Gambia
GN Guinea
GP Guadeloupe
GQ Equatorial Guinea
GR Greece
GS South Georgia and the South Sandwich Islands
GT Guatemala
GU Guam
GW Guinea-Bissau
GY Guyana
HK Hong Kong
HM Heard Island and McDonald Islands
HN Honduras
HR Croatia
HT Haiti
HU Hungary
ID Indonesia
IE Ireland
IL Israel
IM Isle of Man
IN India
IO British Indian Ocean Territory
IQ Iraq
IR Iran
IS Iceland
IT Italy
JE Jersey
JM Jamaica
JO Jordan
JP Japan
KE Kenya
KG Kyrgyzstan
KH Cambodia
KI Kiribati
KM Comoros
KN Saint Kitts and Nevis
KP Korea, Democratic People's Republic of
KR Korea, Republic of
KW Kuwait
KY Cayman Islands
KZ Kazakhstan
LA Lao People's Democratic Republic
LB Lebanon
LC Saint Lucia
LI Liechtenstein
LK Sri Lanka
LR Liberia
LS Lesotho
LT Lithuania
LU Luxembourg
LV Latvia
LY Libya
MA Morocco
MC Monaco
MD Moldova
ME Montenegro
MF Saint Martin (French part)
MG Madagascar
MH Marshall Islands
MK North Macedonia
ML Mali
MM Myanmar
MN Mongolia
MO Macau
MP Northern Mariana Islands
MQ Martinique
MR Mauritania
MS Montserrat
MT Malta
MU Mauritius
MV Maldives
MW Malawi
MX Mexico
MY Malaysia
MZ Mozambique
NA Namibia
NC New Caledonia
NE Niger
NF Norfolk Island
NG Nigeria
NI Nicaragua
NL Netherlands
NO Norway
NP Nepal
NR Nauru
NU Niue
NZ New Zealand
OM Oman
PA Panama
PE Peru
PF French Polynesia
PG Papua New Guinea
PH Philippines
PK Pakistan
PL Poland
PM Saint Pierre and Miquelon
PN Pitcairn
PR Puerto Rico
PS Palestine
PT Portugal
PW Palau
PY Paraguay
QA Qatar
RE Réunion
RO Romania
RS Serbia
RU Russian Federation
RW Rwanda
SA Saudi Arabia
SB Solomon Islands
SC Seychelles
SD Sudan
SE Sweden
SG Singapore
SH Saint Helena
SI Slovenia
SJ Svalbard and Jan Mayen
SK Slovakia
SL Sierra Leone
SM San Marino
SN Senegal
SO Somalia
SR Suriname
SS South Sudan
ST Sao Tome and Principe
SV El Salvador
SX Sint Maarten (Dutch part)
SY Syrian Arab Republic
SZ Eswatini
TC Turks and Caicos Islands
TD Chad
TF French S. Terr.
TG Togo
TH Thailand
TJ Tajikistan
TK Tokelau
TL Timor-Leste
TM Turkmenistan
TN Tunisia
TO Tonga
TR Türkiye
TT Trinidad and Tobago
TV Tuvalu
TW Taiwan
TZ Tanzania
UA Ukraine
UG Uganda
UM US minor outlying islands
US United States
UY Uruguay
UZ Uzbekistan
VA Holy See (Vatican City State)
VC Saint Vincent and the Grenadines
VE Venezuela
VG Virgin Islands, British
VI Virgin Islands, U.S.
VN Viet Nam
VU Vanuatu
WF Wallis and Futuna
WS Samoa
YE Yemen
YT Mayotte
ZA South Africa
ZM Zambia
ZW Zimbabwe
"""

_ALIASES = {
    "Antigua & Barbuda": "AG",
    "Samoa (American)": "AS",
    "Åland Islands": "AX",
    "Bosnia & Herzegovina": "BA",
    "St Barthelemy": "BL",
    "Brunei": "BN",
    "Bolivia": "BO",
    "Congo (Dem. Rep.)": "CD",
    "Central African Rep.": "CF",
    "Congo (Rep.)": "CG",
    "Curaçao": "CW",
    "Czech Republic": "CZ",
    "Micronesia": "FM",
    "Britain (UK)": "GB",
    "South Georgia & the South Sandwich Islands": "GS",
    "Heard Island & McDonald Islands": "HM",
    "Iran": "IR",
    "St Kitts & Nevis": "KN",
    "Korea (North)": "KP",
    "Korea (South)": "KR",
    "Laos": "LA",
    "St Lucia": "LC",
    "Moldova": "MD",
    "St Martin (French)": "MF",
    "Myanmar (Burma)": "MM",
    "St Pierre & Miquelon": "PM",
    "Palestine": "PS",
    "Russia": "RU",
    "St Helena": "SH",
    "Svalbard & Jan Mayen": "SJ",
    "Sao Tome & Principe": "ST",
    "St Maarten (Dutch)": "SX",
    "Syria": "SY",
    "Eswatini (Swaziland)": "SZ",
    "Turks & Caicos Is": "TC",
    "East Timor": "TL",
    "Turkey": "TR",
    "Trinidad & Tobago": "TT",
    "Tanzania": "TZ",
    "Vatican City": "VA",
    "St Vincent": "VC",
    "Virgin Islands (UK)": "VG",
    "Virgin Islands (US)": "VI",
    "Vietnam": "VN",
    "Wallis & Futuna": "WF",
    "Samoa (western)": "WS",
    "USA": "US",
    "U.S.": "US",
    "U.S.A.": "US",
    "United States of America": "US",
    "America": "US",
    "UK": "GB",
    "U.K.": "GB",
    "Great Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Deutschland": "DE",
    "Holland": "NL",
    "The Netherlands": "NL",
    "South Korea": "KR",
    "North Korea": "KP",
    "Ivory Coast": "CI",
    "Côte d'Ivoire": "CI",
    "Swaziland": "SZ",
    "Burma": "MM",
    "Vatican": "VA",
    "UAE": "AE",
    "Republic of Ireland": "IE",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Österreich": "AT",
    "España": "ES",
    "Brasil": "BR",
    "Macedonia": "MK",
    "Hong Kong SAR": "HK",
    "Taiwan, Province of China": "TW",
}
_ALPHA3 = {
    "USA": "US",
    "GBR": "GB",
    "DEU": "DE",
    "FRA": "FR",
    "NLD": "NL",
    "BEL": "BE",
    "LUX": "LU",
    "CHE": "CH",
    "AUT": "AT",
    "ITA": "IT",
    "ESP": "ES",
    "PRT": "PT",
    "IRL": "IE",
    "SWE": "SE",
    "NOR": "NO",
    "DNK": "DK",
    "FIN": "FI",
    "ISL": "IS",
    "POL": "PL",
    "CZE": "CZ",
    "SVK": "SK",
    "HUN": "HU",
    "ROU": "RO",
    "BGR": "BG",
    "GRC": "GR",
    "HRV": "HR",
    "SVN": "SI",
    "EST": "EE",
    "LVA": "LV",
    "LTU": "LT",
    "CAN": "CA",
    "MEX": "MX",
    "BRA": "BR",
    "ARG": "AR",
    "CHL": "CL",
    "COL": "CO",
    "PER": "PE",
    "AUS": "AU",
    "NZL": "NZ",
    "JPN": "JP",
    "CHN": "CN",
    "IND": "IN",
    "SGP": "SG",
    "HKG": "HK",
    "KOR": "KR",
    "TWN": "TW",
    "MYS": "MY",
    "THA": "TH",
    "IDN": "ID",
    "PHL": "PH",
    "VNM": "VN",
    "ZAF": "ZA",
    "NGA": "NG",
    "KEN": "KE",
    "EGY": "EG",
    "MAR": "MA",
    "ARE": "AE",
    "SAU": "SA",
    "QAT": "QA",
    "ISR": "IL",
    "TUR": "TR",
    "UKR": "UA",
}


COUNTRY_NAMES: dict[str, str] = dict(line.split(" ", 1) for line in _TABLE.strip().splitlines())


def _key(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    folded = folded.replace("&", " and ").replace("saint ", "st ")
    folded = re.sub(r"[^a-z0-9]+", " ", folded)
    return re.sub(r"^the |, the$", "", folded.strip())


_BY_NAME: dict[str, str] = {
    **{_key(name): code for code, name in COUNTRY_NAMES.items()},
    **{_key(alias): code for alias, code in _ALIASES.items()},
}


def country_code(value: str | None) -> str | None:
    """Alpha-2 code for a code, alpha-3 code or English name; None when not recognised."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    upper = text.upper()
    if len(upper) == 2 and upper in COUNTRY_NAMES:
        return upper
    if len(upper) == 3 and upper in _ALPHA3:
        return _ALPHA3[upper]
    return _BY_NAME.get(_key(text))


def country_name(code: str) -> str | None:
    """The English short name for an alpha-2 code (what Salesforce shows in BillingCountry)."""
    return COUNTRY_NAMES.get(code.upper())
