"""Pricing: pure rules that turn billing events into priced, taxed invoice lines.

- ``rate_cards``: date-effective, immutable rate card versions;
- ``rating``: rated lines, outcomes (billed + held) and the cap rule;
- ``time_materials``, ``installments`` (fixed fee, milestone), ``retainer``, ``usage``;
- ``fx``: exchange rates on the document date; ``tax``: tax and the invoice builder;
- ``schedules``: billing schedules from an approved proposal.

No I/O, no clock, no randomness; Money/Decimal only. Each module's docstring states its rules
so an invoice total can be recomputed by hand.
"""
