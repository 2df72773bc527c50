"""Deterministic synthetic customer-support tickets for demos and tests.

The generator draws a hidden "true" world (category, topic, severity,
sentiment, escalation cues, customer) for every ticket, renders realistic
text from it, and then degrades the labels the way a real help desk does:
some original categories and priorities are wrong, agents fix a good share
of them later (with the occasional conflicting correction), and a third of
the customers answer a CSAT survey.

Everything is driven by ``numpy.random.default_rng`` generators derived from
the seed; there is no global random state and no wall clock, so the same
arguments always give byte-identical CSV files.

Example:
    >>> data = generate(1_000, months=3, seed=7)
    >>> len(data.tickets), list(data.tickets.columns[-2:])
    (1000, ['category', 'priority'])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

CATEGORIES: tuple[str, ...] = (
    "Billing",
    "Technical",
    "Account",
    "Shipping",
    "Returns",
    "Sales",
    "Feedback",
)
PRIORITIES: tuple[str, ...] = ("critical", "high", "normal", "low")
CHANNELS: tuple[str, ...] = ("email", "chat", "phone", "web", "social")
TIERS: tuple[str, ...] = ("free", "standard", "premium", "enterprise")
LANGUAGES: tuple[str, ...] = ("en", "de", "es", "fr")

DEFAULT_START = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
DEFAULT_UNLABELED_START = datetime.fromisoformat("2026-07-01T00:00:00+00:00")

TICKET_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "created_at",
    "channel",
    "customer_id",
    "customer_tier",
    "customer_ltv",
    "language",
    "subject",
    "body",
    "category",
    "priority",
)
FEEDBACK_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "corrected_category",
    "corrected_priority",
    "agent_id",
    "corrected_at",
    "reason",
)
SURVEY_COLUMNS: tuple[str, ...] = ("ticket_id", "csat", "comment", "answered_at")


@dataclass(frozen=True)
class SyntheticData:
    """One synthetic help-desk history.

    Attributes:
        tickets: labeled tickets (original, partly wrong labels), sorted by time.
        feedback: agent corrections; the latest one per field is the truth.
        surveys: CSAT surveys answered by customers.
    """

    tickets: pd.DataFrame
    feedback: pd.DataFrame
    surveys: pd.DataFrame


class _Topic(NamedTuple):
    """What a ticket is about inside its category (hidden from the output)."""

    name: str
    severity: float
    weight: float
    subjects: tuple[str, ...]
    sentences: tuple[str, ...]


# --------------------------------------------------------------------------
# Text material. Templates use {slot} placeholders filled per ticket.
# --------------------------------------------------------------------------

_BILLING = (
    _Topic(
        "double_charge",
        2.0,
        1.2,
        (
            "Charged twice",
            "Double charge on my card",
            "Duplicate payment",
            "why was I billed 2x??",
            "Two charges for {plan}",
            "Duplicate charge of {amount}",
            "charged two times",
        ),
        (
            "I was charged twice for my {plan} subscription this month.",
            "My bank statement shows two charges of {amount} on {date}.",
            "There are two identical payments of {amount} on my card ending {card}.",
            "You billed my card ending {card} twice for the same invoice.",
            "I see a duplicate charge for {amount} and I only have one account.",
            "The renewal went through two times, please reverse one of them.",
            "Your system took {amount} from my account twice in one day.",
        ),
    ),
    _Topic(
        "wrong_amount",
        1.2,
        1.0,
        (
            "Wrong amount on invoice",
            "Invoice {invoice} is incorrect",
            "Price increase?",
            "Overcharged",
            "Billing error",
            "Why is my bill higher",
            "Incorrect charge",
        ),
        (
            "Invoice {invoice} shows {amount} but my plan is supposed to be {amount2} per month.",
            "I was overcharged this month and nobody told me about a price change.",
            "My bill went up from {amount2} to {amount} without any notice.",
            "You are still charging me for {seats} seats even though we only have a few users now.",
            "The tax on my last invoice looks wrong.",
            "I was charged for the annual plan but I selected monthly billing.",
            "The discount code I used at checkout was not applied to the invoice.",
        ),
    ),
    _Topic(
        "invoice_request",
        0.0,
        1.0,
        (
            "Invoice copy",
            "Need invoice for {date}",
            "VAT invoice request",
            "Receipt please",
            "Billing address on invoices",
            "Invoice {invoice}",
            "invoices for accounting",
        ),
        (
            "Could you send me a copy of invoice {invoice}?",
            "I need a VAT invoice for our accounting department.",
            "Please add our company name and tax ID to future invoices.",
            "Where can I download my receipts for the last {count} months?",
            "Our finance team needs the invoices sent to {email} instead.",
            "Can you change the billing address on my invoices?",
            "I need a receipt for the payment I made on {date}.",
        ),
    ),
    _Topic(
        "payment_failed",
        1.5,
        1.0,
        (
            "Payment declined",
            "Card declined",
            "Can't update payment method",
            "Renewal failed",
            "payment not going through",
            "Billing problem",
            "Past due balance?",
        ),
        (
            "My payment keeps getting declined even though the card works everywhere else.",
            "I tried to update my credit card ending {card} but the billing page gives an error.",
            "The subscription renewal failed and now my account shows a past due balance.",
            "I got an email saying my payment failed, but my bank says there is no problem.",
            "I want to switch from credit card to paying by bank transfer.",
            "PayPal shows the payment as pending for {days} days.",
            "How do I pay the outstanding balance of {amount}?",
        ),
    ),
    _Topic(
        "subscription_refund",
        1.2,
        0.9,
        (
            "Refund not received",
            "Where is my refund",
            "Refund for cancelled subscription",
            "Money back please",
            "Refund request",
            "Still charged after cancelling",
        ),
        (
            "I cancelled my subscription on {date} but I was still charged {amount}.",
            "You promised a refund of {amount} on {date} and I still don't see it.",
            "Please refund the last charge, I did not use the service this month.",
            "I was charged after my free trial ended even though I cancelled in time.",
            "When will the credit for the downtime be applied to my bill?",
            "Please stop billing my card, I closed my account weeks ago.",
        ),
    ),
)

_TECHNICAL = (
    _Topic(
        "outage",
        3.0,
        0.8,
        (
            "Service down",
            "Everything is down",
            "OUTAGE",
            "Site not loading",
            "{error} on all requests",
            "Dashboard unavailable",
            "Nothing works since {time}",
            "Is your service down?",
        ),
        (
            "The web dashboard has been down since {time} for all of our users.",
            "We get {error} on every request to the API.",
            "Nothing loads, the page just shows {error}.",
            "Our whole team cannot work because the service is down.",
            "{product} stopped responding for everyone in our office {time}.",
            "Is there an outage? Your status page says all systems operational but nothing works.",
            "All our devices went offline at the same time {time}.",
        ),
    ),
    _Topic(
        "data_loss",
        2.8,
        0.5,
        (
            "Data missing",
            "Files disappeared",
            "Lost all my data",
            "Sync deleted my files",
            "Project data gone after update",
            "Recordings missing",
        ),
        (
            "After the last update all my files disappeared from {product}.",
            "The sync deleted our shared project folder and the trash is empty.",
            "Half of our records are missing from the dashboard since {time}.",
            "I lost {count} months of recordings from my {device}.",
            "We need to restore a backup from {date}, our data is gone.",
            "The import overwrote all our existing contacts.",
        ),
    ),
    _Topic(
        "bug",
        1.5,
        1.4,
        (
            "Bug report",
            "App crashes",
            "{product} keeps crashing",
            "Export not working",
            "Error when saving",
            "Button does nothing",
            "Something is broken",
            "Bug in latest version",
        ),
        (
            "The app crashes every time I open the settings screen on {os}.",
            "The export button does nothing when I click it in {browser}.",
            "I get {error} when I try to save my changes.",
            "{product} keeps freezing and I have to restart it several times a day.",
            "Notifications stopped working after the latest update.",
            "The search returns no results even for items I know exist.",
            "Charts on the dashboard show the wrong dates.",
        ),
    ),
    _Topic(
        "performance",
        1.3,
        0.7,
        (
            "Very slow",
            "Performance issues",
            "Dashboard slow",
            "Lag",
            "Timeouts",
            "everything is so slow",
        ),
        (
            "The dashboard takes more than 30 seconds to load.",
            "Everything has been extremely slow since {date}.",
            "Reports time out before they finish loading.",
            "Video from my {device} lags by several seconds.",
            "Uploads are stuck at 99% and never complete.",
        ),
    ),
    _Topic(
        "integration",
        1.6,
        0.7,
        (
            "API error",
            "Webhook not firing",
            "Integration broken",
            "API {error}",
            "Slack integration stopped",
            "SSO issue",
            "API key not working",
        ),
        (
            "The API returns {error} when we call the orders endpoint.",
            "Our webhooks stopped firing on {date} and we missed events.",
            "The Slack integration stopped posting alerts.",
            "Our API key suddenly returns 401 Unauthorized.",
            "The Zapier connection keeps failing with a timeout.",
            "Rate limits seem much lower than documented, we get 429 errors.",
            "Single sign-on with our identity provider fails with {error}.",
        ),
    ),
    _Topic(
        "setup",
        0.8,
        0.9,
        (
            "Setup help",
            "Can't connect to wifi",
            "Firmware update stuck",
            "Pairing problem",
            "Installation issue",
            "How to connect {product}",
            "{product} offline",
        ),
        (
            "My {device} won't connect to the wifi network.",
            "The firmware update is stuck at 45% for hours.",
            "I can't pair the {device} with the mobile app.",
            "The installer fails on {os} with {error}.",
            "The device light keeps blinking orange and it never finishes setup.",
            "The {device} keeps disconnecting from the network every few minutes.",
        ),
    ),
    _Topic(
        "howto",
        0.2,
        0.8,
        (
            "How do I",
            "Question about {feature}",
            "How to export data",
            "Quick question",
            "Setting up {feature}",
            "Where is the setting for {feature}",
        ),
        (
            "How do I set up {feature} for my team?",
            "Is there a way to export my data to CSV?",
            "Where do I find the settings for {feature}?",
            "Can I use {product} with {os}?",
            "Is there documentation for the API somewhere?",
            "How do I reset the {device} to factory settings?",
        ),
    ),
)

_ACCOUNT = (
    _Topic(
        "login",
        2.0,
        1.4,
        (
            "Can't log in",
            "Login problem",
            "cant login",
            "Password reset not working",
            "Locked out",
            "Unable to sign in",
            "Sign in issue",
        ),
        (
            "I can't log in to my account, it says my password is incorrect.",
            "The password reset email never arrives, I checked the spam folder.",
            "The reset link says it has expired every time I click it.",
            "After I enter my password the login page just reloads.",
            "I get {error} when I try to sign in.",
            "My username is {email} but the system says the account does not exist.",
        ),
    ),
    _Topic(
        "locked_2fa",
        2.0,
        0.8,
        (
            "Account locked",
            "2FA problem",
            "Lost my phone, can't get code",
            "Verification code not arriving",
            "Locked out of account",
            "two factor not working",
        ),
        (
            "My account was locked after too many login attempts.",
            "I lost my phone and can't get the two-factor authentication code.",
            "The verification code SMS never arrives on {phone}.",
            "I changed phones and the authenticator app no longer works.",
            "Please unlock my account, I need access today.",
        ),
    ),
    _Topic(
        "security",
        3.0,
        0.5,
        (
            "Account hacked",
            "Suspicious login",
            "Someone accessed my account",
            "Unauthorized access",
            "Security concern",
            "Password changed without me",
        ),
        (
            "Someone logged into my account from {city} and it wasn't me.",
            "I think my account was hacked, my email address was changed.",
            "I got an email about a password change that I did not make.",
            "There are API keys in our account that nobody on our team created.",
            "Please lock my account immediately, someone is using it.",
            "I see unknown devices in my login history.",
        ),
    ),
    _Topic(
        "profile",
        0.5,
        1.0,
        (
            "Change email address",
            "Update account details",
            "Change account owner",
            "Update phone number",
            "Name change",
            "Merge accounts",
        ),
        (
            "Please change the email address on my account to {email}.",
            "I need to update the phone number on my profile to {phone}.",
            "How do I change the name on my account?",
            "Our account owner {name} left the company, please transfer ownership to me.",
            "I want to merge my two accounts into one.",
        ),
    ),
    _Topic(
        "users",
        1.0,
        0.8,
        (
            "Add user",
            "Remove user access",
            "Permissions",
            "Admin rights",
            "Team members",
            "Invite not received",
        ),
        (
            "Please remove access for an employee who left the company today.",
            "I need admin rights to manage our team settings.",
            "The invite email for my colleague {email} never arrived.",
            "How do I add {count} new users to our workspace?",
            "One of my team members sees a permission denied message.",
            "Can I give a user read-only access?",
        ),
    ),
    _Topic(
        "close",
        0.6,
        0.6,
        (
            "Delete my account",
            "Close account",
            "GDPR data request",
            "Remove my data",
            "Deactivate account",
        ),
        (
            "Please delete my account and all my personal data.",
            "I would like a copy of all the data you store about me under GDPR.",
            "How do I close my account permanently?",
            "I want to deactivate my account but keep my data for now.",
            "Please unsubscribe {email} from all your emails.",
        ),
    ),
)

_SHIPPING = (
    _Topic(
        "where_is",
        1.5,
        1.5,
        (
            "Where is my order",
            "Order {order} not arrived",
            "Order status",
            "Package not delivered",
            "Tracking not updating",
            "still no package",
            "Order {order}",
        ),
        (
            "My order {order} still hasn't arrived.",
            "Tracking number {tracking} hasn't updated in {days} days.",
            "The estimated delivery date was {date} and I still have nothing.",
            "Can you tell me where my package is? Order {order}.",
            "The order says shipped but {carrier} has no information about it.",
            "It has been {days} days since I placed order {order}.",
        ),
    ),
    _Topic(
        "delayed",
        1.0,
        0.9,
        (
            "Delivery delayed",
            "Late delivery",
            "Delivery date changed again",
            "Shipping delay",
            "When will my order ship",
        ),
        (
            "The delivery date keeps moving back every day.",
            "I paid for express shipping but the order is already {days} days late.",
            "I needed this before {date}, will it arrive in time?",
            "{carrier} says the package is delayed at the sorting center.",
            "Why is the shipping taking so long?",
        ),
    ),
    _Topic(
        "address",
        1.3,
        0.7,
        (
            "Change delivery address",
            "Wrong address",
            "Update shipping address",
            "Address mistake on order {order}",
        ),
        (
            "I need to change the delivery address for order {order}.",
            "I entered the wrong shipping address, can you update it before it ships?",
            "Please send the package to my office in {city} instead.",
            "The label has my old address on it.",
        ),
    ),
    _Topic(
        "lost",
        2.0,
        0.7,
        (
            "Package lost",
            "Marked delivered but not received",
            "Missing package",
            "Delivered to wrong address",
            "Stolen parcel?",
        ),
        (
            "{carrier} marked the package as delivered but there is nothing here.",
            "The package was delivered to the wrong address.",
            "My neighbor didn't get it either, I think the parcel is lost.",
            "The tracking says delivered on {date} but I never received it.",
            "Only one of the two boxes from order {order} arrived.",
        ),
    ),
    _Topic(
        "damaged_transit",
        1.4,
        0.5,
        (
            "Package arrived damaged",
            "Damaged box",
            "Crushed parcel",
            "Item broken on arrival",
        ),
        (
            "The box arrived completely crushed and the {device} inside is damaged.",
            "The courier left the package in the rain and everything is wet.",
            "The parcel was open when it arrived and items are missing.",
            "The screen was cracked when I unpacked it, the packaging was damaged.",
        ),
    ),
    _Topic(
        "options",
        0.2,
        0.6,
        (
            "Shipping options",
            "Do you ship to {country}",
            "Express shipping cost",
            "Delivery times",
            "Shipping question",
        ),
        (
            "Do you ship to {country}?",
            "How much does express shipping cost?",
            "Can I pick up the order at a store instead of delivery?",
            "How long does delivery to {city} usually take?",
            "Can I get free shipping if I order {count} units?",
            "Which carrier do you use for deliveries to {country}?",
        ),
    ),
)

_RETURNS = (
    _Topic(
        "return_request",
        0.8,
        1.2,
        (
            "Return request",
            "I want to return {device}",
            "Return order {order}",
            "How to return",
            "Send back item",
            "return",
        ),
        (
            "I would like to return the {device} from order {order}.",
            "How do I send back an item I don't need anymore?",
            "The {device} doesn't fit my needs, I want to return it.",
            "Is it too late to return something I bought on {date}?",
            "I want to return my order, it is still unopened.",
            "Can I return just one item from order {order}?",
        ),
    ),
    _Topic(
        "return_refund",
        1.4,
        1.0,
        (
            "Refund for returned item",
            "Return refund missing",
            "Sent item back, no refund",
            "Refund status for return",
            "Still waiting for my money",
        ),
        (
            "I sent the {device} back {days} days ago and still haven't got my refund.",
            "The warehouse received my return on {date} but the refund of {amount} is missing.",
            "You refunded {amount} but the item cost {amount2}.",
            "Tracking shows my return was delivered to you, when will I get my money back?",
            "I was charged a restocking fee on my return that nobody mentioned.",
        ),
    ),
    _Topic(
        "wrong_item",
        1.3,
        0.8,
        (
            "Wrong item received",
            "Wrong size",
            "Not what I ordered",
            "Incorrect item in order {order}",
            "Wrong color",
        ),
        (
            "I received the wrong item in order {order}.",
            "I ordered size M and got size XL.",
            "The box contained a {device} instead of a {product2}.",
            "The color is different from what I ordered.",
            "You sent me two of the same item and not the one I wanted.",
        ),
    ),
    _Topic(
        "defective",
        1.5,
        0.9,
        (
            "Defective product",
            "{device} broken, want replacement",
            "Faulty item",
            "Warranty claim",
            "Item stopped working",
        ),
        (
            "My {device} stopped working after a week and I want a replacement.",
            "The {device} won't turn on at all, it's defective.",
            "I want to make a warranty claim for my {device}.",
            "The battery of the {device} dies after one hour, please replace it.",
            "This is the second faulty unit you sent me.",
        ),
    ),
    _Topic(
        "label",
        0.5,
        0.6,
        (
            "Return label",
            "Need return label",
            "Return label link broken",
            "Prepaid label?",
            "Return shipping cost",
        ),
        (
            "The link to the return label is broken.",
            "Can you send me a prepaid return label for order {order}?",
            "Do I have to pay for return shipping?",
            "I lost the return label that came with the package.",
            "Where do I drop off the return package?",
        ),
    ),
    _Topic(
        "exchange",
        0.5,
        0.5,
        (
            "Exchange request",
            "Exchange for different size",
            "Swap item",
            "Exchange instead of refund",
        ),
        (
            "Can I exchange the {device} for a {product2}?",
            "I'd rather have an exchange than a refund.",
            "I want to swap my order for a bigger size.",
            "Is it possible to exchange an item bought on sale?",
        ),
    ),
)

_SALES = (
    _Topic(
        "quote",
        0.6,
        1.0,
        (
            "Quote request",
            "Pricing for {seats} seats",
            "Volume discount",
            "Price for enterprise plan",
            "Request for proposal",
        ),
        (
            "We are looking for a quote for {seats} seats on the {plan}.",
            "Do you offer volume discounts for more than {seats} users?",
            "Can you send pricing for the enterprise plan?",
            "We need a formal quote for our procurement department.",
            "What would it cost to roll this out to {seats} employees?",
        ),
    ),
    _Topic(
        "upgrade",
        0.5,
        1.0,
        (
            "Upgrade plan",
            "Interested in {plan}",
            "Difference between plans",
            "Upgrade options",
            "More features",
        ),
        (
            "I want to upgrade to the {plan}, what does it include?",
            "What is the difference between the Pro and Business plans?",
            "If I upgrade mid-month, how is the price calculated?",
            "We are outgrowing our current plan and need more storage.",
            "Does the {plan} include {feature}?",
        ),
    ),
    _Topic(
        "demo",
        0.4,
        0.8,
        (
            "Demo request",
            "Schedule a demo",
            "Product demo for our team",
            "Meeting request",
            "Call with sales",
        ),
        (
            "Can we schedule a demo for our team next week?",
            "I'd like to talk to someone from sales about {product}.",
            "Please have a sales rep call me at {phone}.",
            "We are evaluating {product} against two competitors and would like a walkthrough.",
        ),
    ),
    _Topic(
        "trial",
        0.5,
        0.6,
        (
            "Trial extension",
            "Extend trial",
            "Trial question",
            "Free trial",
        ),
        (
            "Could you extend our free trial by two weeks?",
            "Our trial ends on {date} and we need more time to evaluate.",
            "Does the trial include {feature}?",
            "What happens to our data when the trial ends?",
        ),
    ),
    _Topic(
        "partner",
        0.2,
        0.4,
        (
            "Partnership",
            "Reseller inquiry",
            "Partnership opportunity",
            "Affiliate program",
        ),
        (
            "We are a reseller in {country} and would like to partner with you.",
            "Do you have an affiliate or referral program?",
            "We'd like to bundle {product} with our services.",
            "Who is the right person to talk to about a partnership?",
        ),
    ),
    _Topic(
        "renewal",
        0.9,
        0.6,
        (
            "Contract renewal",
            "Renewal pricing",
            "Enterprise agreement",
            "Renewal quote",
        ),
        (
            "Our contract is up for renewal on {date} and we'd like to discuss pricing.",
            "We want to add {seats} more licenses to our enterprise agreement.",
            "Can we switch to a multi-year contract for a better price?",
            "Our procurement team needs an updated order form before renewal.",
        ),
    ),
)

_FEEDBACK = (
    _Topic(
        "feature_request",
        0.1,
        1.2,
        (
            "Feature request",
            "Suggestion",
            "Idea for {product}",
            "Please add {feature}",
            "Would love this feature",
        ),
        (
            "It would be great if {product} had a dark mode.",
            "Please add {feature} to the mobile app.",
            "I would love an option to schedule reports weekly.",
            "Could you make it possible to customize the dashboard?",
            "A keyboard shortcut for search would save me a lot of time.",
        ),
    ),
    _Topic(
        "compliment",
        0.0,
        0.9,
        (
            "Thank you!",
            "Great support",
            "Kudos to {agent}",
            "Love the product",
            "Just wanted to say thanks",
        ),
        (
            "Your agent {agent} was super helpful yesterday, thank you!",
            "I just wanted to say that I love {product}.",
            "The new update is fantastic, great job to the team.",
            "Best customer service I have had in years.",
            "Thanks for fixing my issue so quickly last week.",
        ),
    ),
    _Topic(
        "complaint",
        0.9,
        0.9,
        (
            "Complaint",
            "Disappointed with support",
            "Poor service",
            "Feedback about your support",
            "Very unhappy",
        ),
        (
            "Your support is terrible, I waited {days} days for an answer.",
            "The agent on the phone was rude and hung up on me.",
            "I keep getting different answers from different agents.",
            "Your chatbot is useless, I just want to talk to a human.",
            "I am disappointed with how my last request was handled.",
        ),
    ),
    _Topic(
        "ux",
        0.1,
        0.7,
        (
            "Feedback on new design",
            "New interface",
            "UI feedback",
            "Website feedback",
            "App review",
        ),
        (
            "The new design is confusing and I can't find anything.",
            "The menu layout in the latest version is much worse.",
            "The font in the app is too small to read.",
            "Your website is hard to navigate on mobile.",
            "I preferred the old dashboard, please bring it back.",
        ),
    ),
    _Topic(
        "general",
        0.0,
        0.5,
        (
            "Feedback",
            "Some thoughts",
            "Survey",
            "Comments",
            "My experience",
        ),
        (
            "Here is some feedback after using {product} for {years} years.",
            "Overall I'm happy but a few things could be better.",
            "I filled out your survey but wanted to add a few comments.",
            "Just sharing my experience with your product.",
        ),
    ),
)

_TOPICS: tuple[tuple[_Topic, ...], ...] = (
    _BILLING,
    _TECHNICAL,
    _ACCOUNT,
    _SHIPPING,
    _RETURNS,
    _SALES,
    _FEEDBACK,
)
_CATEGORY_WEIGHTS = np.array([0.22, 0.27, 0.15, 0.13, 0.10, 0.07, 0.06])

# Plausible confusions: who gets mixed up with whom (rows follow CATEGORIES).
_CONFUSION = np.array(
    [
        # Bil  Tec  Acc  Shi  Ret  Sal  Fee
        [0.00, 0.15, 0.20, 0.00, 0.35, 0.30, 0.00],  # Billing
        [0.15, 0.00, 0.50, 0.00, 0.15, 0.00, 0.20],  # Technical
        [0.30, 0.50, 0.00, 0.00, 0.00, 0.20, 0.00],  # Account
        [0.25, 0.00, 0.00, 0.00, 0.60, 0.00, 0.15],  # Shipping
        [0.45, 0.15, 0.00, 0.40, 0.00, 0.00, 0.00],  # Returns
        [0.60, 0.15, 0.25, 0.00, 0.00, 0.00, 0.00],  # Sales
        [0.20, 0.40, 0.00, 0.20, 0.00, 0.20, 0.00],  # Feedback
    ]
)

_SHORT = (
    (
        "charged twice??",
        "refund pls",
        "invoice?",
        "why did you charge me",
        "card declined again",
        "billing??",
    ),
    ("app crashed", "site down??", "not working", "{error}", "still broken", "nothing loads"),
    (
        "cant login",
        "locked out",
        "reset pw not working",
        "hacked??",
        "change my email pls",
        "login??",
    ),
    (
        "where is my order",
        "package??",
        "order {order}?",
        "tracking not updating",
        "still not delivered",
    ),
    ("want to return", "return label?", "wrong item", "refund for return?", "broken, send new one"),
    ("pricing?", "demo pls", "upgrade?", "quote for {seats} users", "enterprise pricing"),
    ("love it", "great job", "bad service", "add dark mode pls", "thanks!!"),
)
_SHORT_GENERIC = (
    "help???",
    "hello?",
    "urgent",
    "call me",
    "??",
    "please respond",
    "any update?",
    "same problem again",
    "HELP",
    "pls fix",
    "is anyone there",
)
_GENERIC = (
    "I have a problem with my account.",
    "Please help, this is urgent.",
    "Can someone call me back at {phone}?",
    "I already contacted you about this last week.",
    "See the screenshot attached.",
    "Following up on my previous message.",
    "My order number is {order}.",
    "It is still not working.",
    "Nobody has replied to my last email.",
    "I need this sorted out today.",
    "Ticket reference {ref}.",
    "Please let me know what I should do.",
    "I have a question about my order.",
    "Something is wrong with my subscription.",
    "I'm not sure who to ask about this.",
    "Can you check what happened?",
    "The issue I reported before is back.",
    "This is about my {product}.",
    "I was told someone would get back to me.",
    "Please look into this.",
)
_CONTEXT = (
    "I've been a customer for {years} years.",
    "I'm using {product} on {os}.",
    "We have {seats} people on our team using this.",
    "I bought the {device} on {date}.",
    "This started on {date}.",
    "My account email is {email}.",
    "I'm writing on behalf of my company.",
    "My colleague {name} reported this before.",
    "I tried again {time} with the same result.",
)
_TRIED = (
    "I already tried restarting everything.",
    "I cleared the cache and cookies, no change.",
    "I reinstalled the app twice.",
    "I checked the FAQ and the help center but it didn't help.",
    "I also asked in the community forum and got no answer.",
    "I waited a few days in case it fixed itself.",
)
_ANGER = (
    (),
    (
        "This is really frustrating.",
        "I'm not happy about this.",
        "I expected better.",
        "This is the second time this happens.",
        "Please fix this asap.",
        "Honestly this is getting annoying.",
    ),
    (
        "This is completely unacceptable!",
        "I am FURIOUS.",
        "Worst service ever!!!",
        "Fix this NOW!",
        "I have wasted hours on this!!",
        "Are you kidding me?!",
        "How is this still not fixed???",
    ),
)
_CUES = (
    (
        "I will contact my lawyer if this isn't resolved.",
        "I'm filing a chargeback with my bank.",
        "Consider this a formal complaint.",
        "I will report this to consumer protection.",
        "Our legal team is copied on this.",
    ),
    (
        "I'll post this on twitter if I don't hear back today.",
        "I'm going to leave a 1-star review everywhere.",
        "Everyone on LinkedIn will hear about this.",
        "I'll make a video about how bad this is.",
    ),
    (
        "Our CEO is asking me for updates every hour.",
        "Our VP of Operations escalated this to me.",
        "The CFO wants an answer today.",
        "This has gone up to our board.",
    ),
    (
        "We are seriously considering switching to a competitor.",
        "I will cancel my subscription if this isn't fixed.",
        "We are evaluating other vendors now.",
    ),
    (
        "Our whole team is blocked.",
        "We are losing sales every minute this continues.",
        "This affects {seats} of our users.",
        "Our customers are complaining to us.",
    ),
)
_CUE_WEIGHTS = np.array([0.9, 0.7, 1.0, 0.5, 0.9])
_POLITE = (
    "Thanks in advance!",
    "No rush on this.",
    "Whenever you get a chance.",
    "Thank you for your help.",
    "Appreciate it.",
)
_GENERIC_SUBJECTS = (
    "Question",
    "Help needed",
    "Urgent",
    "Re: ticket {ref}",
    "Follow up",
    "Problem",
    "Support request",
    "Issue",
    "Fwd: your message",
    "hello",
)

_GREETINGS = {
    "en": (
        "Hi,",
        "Hello,",
        "Hi team,",
        "Dear Support,",
        "Hey",
        "Good morning,",
        "To whom it may concern,",
        "Hi {agent},",
    ),
    "de": ("Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,"),
    "es": ("Hola,", "Buenos días,", "Estimados,"),
    "fr": ("Bonjour,", "Madame, Monsieur,", "Salut,"),
}
_CLOSINGS = {
    "en": ("Thanks,", "Best regards,", "Cheers,", "Regards,", "Thank you", "Kind regards,"),
    "de": ("Mit freundlichen Grüßen", "Danke,", "Viele Grüße"),
    "es": ("Saludos,", "Gracias,", "Un saludo"),
    "fr": ("Cordialement,", "Merci,", "Bien à vous"),
}
_SORRY = {
    "de": "Entschuldigung für mein Englisch.",
    "es": "Perdón por mi inglés.",
    "fr": "Désolé pour mon anglais.",
    "en": "",
}
_LOCAL_PHRASES = {
    "de": (
        "Problem mit der Rechnung",
        "funktioniert nicht",
        "kann mich nicht anmelden",
        "Lieferung fehlt",
        "Rücksendung",
        "Angebot anfragen",
        "Verbesserungsvorschlag",
    ),
    "es": (
        "problema con la factura",
        "no funciona",
        "no puedo iniciar sesión",
        "mi pedido no ha llegado",
        "quiero devolver",
        "solicitar presupuesto",
        "sugerencia",
    ),
    "fr": (
        "problème de facturation",
        "ne fonctionne pas",
        "impossible de me connecter",
        "colis non reçu",
        "retour produit",
        "demande de devis",
        "suggestion",
    ),
}

_FIRST = (
    "Anna",
    "Ben",
    "Carlos",
    "Dana",
    "Elif",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kemal",
    "Lena",
    "Marta",
    "Nina",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tomas",
    "Uma",
    "Victor",
    "Wei",
    "Yusuf",
    "Zoe",
)
_LAST = (
    "Smith",
    "Garcia",
    "Müller",
    "Nguyen",
    "Kowalski",
    "Rossi",
    "Johnson",
    "Okafor",
    "Silva",
    "Brown",
    "Dubois",
    "Schmidt",
    "Tanaka",
    "Novak",
    "Haddad",
    "Larsen",
    "Patel",
    "Kim",
)
_PRODUCTS = (
    "Nimbus Hub",
    "Nimbus Hub Mini",
    "CloudSync Pro",
    "CloudSync",
    "SmartCam 2",
    "SmartCam Outdoor",
    "Pulse Router X2",
    "Pulse Mesh",
    "Nimbus Desk app",
    "Nimbus Analytics",
    "mobile app",
    "Pulse Tracker",
)
_DEVICES = (
    "Nimbus Hub",
    "Nimbus Hub Mini",
    "SmartCam 2",
    "SmartCam Outdoor",
    "Pulse Router X2",
    "Pulse Mesh",
    "Pulse Tracker",
    "Nimbus Doorbell",
    "SmartCam Indoor",
)
_PLANS = (
    "Pro plan",
    "Business plan",
    "Starter plan",
    "Enterprise plan",
    "Family plan",
    "Team plan",
)
_ERRORS = (
    "error 500",
    "ERR_CONNECTION_RESET",
    "503 Service Unavailable",
    "error code 0x80070005",
    "a 502 Bad Gateway",
    "'Something went wrong'",
    "error 1042",
    "a blank white page",
    "504 timeout",
)
_FEATURES = (
    "SSO",
    "two-factor authentication",
    "CSV export",
    "team folders",
    "API keys",
    "dark mode",
    "scheduled reports",
    "offline mode",
    "audit logs",
    "custom roles",
)
_CITIES = (
    "Berlin",
    "Madrid",
    "Lyon",
    "Chicago",
    "Toronto",
    "Lagos",
    "Mumbai",
    "Sydney",
    "Austin",
    "Leeds",
)
_COUNTRIES = ("Canada", "Mexico", "Norway", "Brazil", "Japan", "Poland", "Ireland", "South Africa")
_CARRIERS = ("UPS", "DHL", "FedEx", "USPS", "DPD", "Royal Mail", "GLS")
_OSES = ("Windows 11", "macOS", "Android 14", "iOS 17", "Ubuntu", "Windows 10", "ChromeOS")
_BROWSERS = ("Chrome", "Firefox", "Safari", "Edge")
_MONTHS = (
    "Jan",
    "Feb",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
)
_TIMES = (
    "this morning",
    "yesterday evening",
    "around 9am",
    "since last night",
    "at 14:30",
    "an hour ago",
    "since Monday",
)
_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "acme-corp.com",
    "example.org",
    "web.de",
    "proton.me",
)

# Priority model: fixed thresholds on a latent urgency score (calibrated so
# that roughly 7% / 23% / 50% / 20% of tickets fall in each level).
_PRIORITY_CUTS = (4.39, 2.89, 1.09)
_TIER_BONUS = np.array([0.0, 0.25, 0.55, 1.0])
_CHANNEL_BONUS = np.array([0.0, 0.15, 0.35, -0.1, 0.45])
_CATEGORY_CSAT = np.array([-0.2, -0.1, -0.1, -0.3, -0.2, 0.2, 0.1])
_AGENTS = tuple(f"agent-{i:02d}" for i in range(1, 25))
_CATEGORY_REASONS = (
    "misrouted",
    "wrong queue",
    "customer clarified in follow-up",
    "",
    "auto-triage mistake",
    "moved to {cat} queue",
    "actually a {cat} issue",
    "",
)
_PRIORITY_REASONS = (
    "priority adjusted",
    "not urgent, question only",
    "impact confirmed by customer",
    "",
    "customer is blocked",
    "SLA review",
)
_CONFLICT_REASONS = (
    "re-triaged after call with customer",
    "reverted previous change",
    "second review",
)
_SURVEY_COMMENTS = (
    (
        "Still not resolved.",
        "Took way too long.",
        "Nobody actually helped me.",
        "I had to explain my problem three times.",
        "Very disappointed.",
        "Useless answer.",
    ),
    (
        "It was ok.",
        "Solved eventually but slow.",
        "Agent was nice but the process is confusing.",
        "Average.",
        "Fine I guess.",
    ),
    (
        "Quick and helpful, thanks!",
        "Great support.",
        "{agent} was amazing.",
        "Problem solved in minutes.",
        "Very friendly agent.",
        "Thanks for the fast reply!",
    ),
)


# --------------------------------------------------------------------------
# Random helpers
# --------------------------------------------------------------------------


class _Stream:
    """Sequential uniform numbers for the per-ticket Python text code.

    Draws blocks from a numpy generator, so per-call overhead stays tiny and
    the sequence depends only on the generator's seed.
    """

    __slots__ = ("_buf", "_pos", "_rng")

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        """Next uniform number in [0, 1)."""
        if self._pos >= len(self._buf):
            self._buf = self._rng.random(65_536).tolist()
            self._pos = 0
        value = self._buf[self._pos]
        self._pos += 1
        return value

    def pick(self, options: Sequence[str]) -> str:
        """Uniformly chosen element of ``options``."""
        return options[int(self.u() * len(options))]

    def chance(self, p: float) -> bool:
        """True with probability ``p``."""
        return self.u() < p

    def randint(self, low: int, high: int) -> int:
        """Uniform integer in ``[low, high]``."""
        return low + int(self.u() * (high - low + 1))


def _amount(s: _Stream) -> str:
    value = s.pick(
        ("9.99", "19.99", "29.00", "49.99", "99.00", "120.00", "249.50", "1,200.00", "15.00")
    )
    return s.pick(("$", "€", "£", "$")) + value


def _person(s: _Stream) -> str:
    return f"{s.pick(_FIRST)} {s.pick(_LAST)}"


def _email(s: _Stream) -> str:
    last = s.pick(_LAST).lower().replace("ü", "ue")
    return f"{s.pick(_FIRST).lower()}.{last}{s.randint(1, 99)}@{s.pick(_DOMAINS)}"


_SLOTS: dict[str, Callable[[_Stream], str]] = {
    "product": lambda s: s.pick(_PRODUCTS),
    "product2": lambda s: s.pick(_DEVICES),
    "device": lambda s: s.pick(_DEVICES),
    "order": lambda s: f"#{s.pick('ABCDKMX')}{s.randint(10_000, 99_999)}",
    "amount": _amount,
    "amount2": _amount,
    "date": lambda s: s.pick(
        (
            f"{s.pick(_MONTHS)} {s.randint(1, 28)}",
            f"{s.randint(1, 12):02d}/{s.randint(1, 28):02d}",
            "Tuesday",
            "the 12th",
            "the 3rd",
        )
    ),
    "card": lambda s: f"{s.randint(1000, 9999)}",
    "email": _email,
    "phone": lambda s: (
        f"+{s.randint(1, 49)} {s.randint(200, 999)} {s.randint(100, 999)} {s.randint(1000, 9999)}"
    ),
    "name": _person,
    "agent": lambda s: s.pick(_FIRST),
    "plan": lambda s: s.pick(_PLANS),
    "days": lambda s: str(s.randint(2, 21)),
    "count": lambda s: str(s.randint(2, 12)),
    "seats": lambda s: str(s.pick((5, 10, 25, 50, 120, 300, 1000))),
    "years": lambda s: str(s.randint(1, 9)),
    "error": lambda s: s.pick(_ERRORS),
    "invoice": lambda s: f"INV-2026-{s.randint(100, 99_999):05d}",
    "tracking": lambda s: f"1Z{s.randint(100_000, 999_999)}{s.randint(10_000_000, 99_999_999)}",
    "carrier": lambda s: s.pick(_CARRIERS),
    "os": lambda s: s.pick(_OSES),
    "browser": lambda s: s.pick(_BROWSERS),
    "feature": lambda s: s.pick(_FEATURES),
    "city": lambda s: s.pick(_CITIES),
    "country": lambda s: s.pick(_COUNTRIES),
    "time": lambda s: s.pick(_TIMES),
    "ref": lambda s: f"{s.randint(100_000, 999_999)}",
}


class _Slots(dict[str, str]):
    """Slot values of one ticket, drawn lazily and reused within the ticket."""

    def __init__(self, stream: _Stream) -> None:
        super().__init__()
        self._stream = stream

    def __missing__(self, key: str) -> str:
        value = _SLOTS[key](self._stream)
        self[key] = value
        return value


# --------------------------------------------------------------------------
# Hidden world: customers, times and per-ticket latent variables
# --------------------------------------------------------------------------

_UNIVERSE_SEED = 20_260_101


def _customer_universe(size: int) -> dict[str, np.ndarray]:
    """Attributes of customers ``0 .. size-1``; customer i never changes.

    Each attribute comes from its own fixed-seed stream, and numpy streams
    are prefix-stable, so a customer's tier and LTV do not depend on
    ``size`` or on the dataset seed.
    """
    tier_u = np.random.default_rng([_UNIVERSE_SEED, 1]).random(size)
    tier = np.searchsorted(np.cumsum([0.40, 0.32, 0.18, 0.10]), tier_u, side="right").clip(0, 3)
    medians = np.array([40.0, 600.0, 3_500.0, 40_000.0])[tier]
    ltv = medians * np.exp(0.8 * np.random.default_rng([_UNIVERSE_SEED, 2]).standard_normal(size))
    zero = (tier == 0) & (np.random.default_rng([_UNIVERSE_SEED, 3]).random(size) < 0.3)
    ltv = np.where(zero, 0.0, np.round(ltv, 2))
    activity = np.exp(1.1 * np.random.default_rng([_UNIVERSE_SEED, 4]).standard_normal(size))
    weight = activity * np.array([0.8, 1.0, 1.3, 2.0])[tier]
    idx = np.arange(size, dtype=np.int64)
    ids = np.array([f"CUST-{v:06d}" for v in (idx * 7_919 + 12_345) % 1_000_000], dtype=object)
    return {"id": ids, "tier": tier, "ltv": ltv, "weight": weight / weight.sum()}


def _utc(moment: datetime | None, default: datetime) -> pd.Timestamp:
    """``moment`` (naive means UTC) or ``default`` as a UTC timestamp."""
    stamp = pd.Timestamp(moment if moment is not None else default)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _created_offsets(
    rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp
) -> np.ndarray:
    """Sorted second offsets from ``start``: fewer tickets at night and on weekends, slow growth."""
    days = max(int((end - start) / pd.Timedelta(days=1)), 1)
    day = np.arange(days)
    weekday = (start.day_of_week + day) % 7
    day_w = np.where(weekday == 5, 0.6, np.where(weekday == 6, 0.5, 1.0)) * (
        1.0 + 0.15 * day / days
    )
    hour_w = np.array(
        [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 9, 8, 6, 5, 4, 3, 3, 2, 1], dtype=float
    )
    picked_day = rng.choice(days, size=n, p=day_w / day_w.sum())
    hour = rng.choice(24, size=n, p=hour_w / hour_w.sum())
    offsets = picked_day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, size=n)
    limit = int((end - start).total_seconds()) - 1
    return np.sort(np.minimum(offsets, limit))


def _pick_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One draw per row index in ``rows`` from the matching row of ``probs``."""
    cdf = np.cumsum(probs[rows], axis=1)
    u = rng.random(len(rows))[:, None] * cdf[:, -1:]
    return (u > cdf).sum(axis=1)


def _draw_topics(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """Topic index within each ticket's category, by topic weight."""
    width = max(len(topics) for topics in _TOPICS)
    probs = np.zeros((len(_TOPICS), width))
    for c, topics in enumerate(_TOPICS):
        probs[c, : len(topics)] = [t.weight for t in topics]
    return _pick_rows(rng, probs, category)


def _severity(category: np.ndarray, topic: np.ndarray) -> np.ndarray:
    """Hidden severity (0 = question, 3 = outage/security) of each ticket."""
    width = max(len(topics) for topics in _TOPICS)
    table = np.zeros((len(_TOPICS), width))
    for c, topics in enumerate(_TOPICS):
        table[c, : len(topics)] = [t.severity for t in topics]
    return table[category, topic]


def _draw_world(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Hidden per-ticket variables: what it is about and how it is written."""
    category = rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_WEIGHTS)
    topic = _draw_topics(rng, category)
    severity = _severity(category, topic)
    style = rng.choice(4, size=n, p=[0.73, 0.18, 0.05, 0.04])  # plain, mixed, generic, short
    second = _pick_rows(rng, _CONFUSION, category)
    second_topic = (rng.random(n) * np.array([len(t) for t in _TOPICS])[second]).astype(int)
    channel = rng.choice(len(CHANNELS), size=n, p=[0.38, 0.22, 0.10, 0.22, 0.08])
    language = rng.choice(len(LANGUAGES), size=n, p=[0.88, 0.05, 0.04, 0.03])
    u = rng.random(n)
    anger = np.where(u < 0.06 + 0.05 * severity, 2, np.where(u < 0.30 + 0.07 * severity, 1, 0))
    anger = np.where((category == 6) & (topic == 2), np.maximum(anger, 1), anger)
    return {
        "category": category,
        "topic": topic,
        "severity": severity,
        "style": style,
        "second": second,
        "second_topic": second_topic,
        "channel": channel,
        "language": language,
        "anger": anger,
        "long": rng.random(n) < 0.12,
    }


def _draw_cues(
    rng: np.random.Generator, world: dict[str, np.ndarray], tier: np.ndarray
) -> np.ndarray:
    """Boolean (n, 5) matrix of escalation cues: legal, social, exec, cancel, impact."""
    anger, sev = world["anger"], world["severity"]
    social = world["channel"] == 4
    probs = np.stack(
        [
            0.005 + 0.04 * anger,
            0.005 + 0.03 * anger + 0.08 * social,
            0.003 + 0.06 * (tier == 3) + 0.02 * (tier == 2) + 0.015 * anger,
            0.01 + 0.03 * anger,
            0.01 + 0.07 * (sev >= 2.5) + 0.05 * (tier >= 2) * (sev >= 1.5),
        ],
        axis=1,
    )
    cues = rng.random(probs.shape) < probs
    quiet = world["style"] == 3
    cues[quiet] = False
    return cues


def _priority(
    rng: np.random.Generator,
    world: dict[str, np.ndarray],
    cues: np.ndarray,
    tier: np.ndarray,
    ltv: np.ndarray,
) -> np.ndarray:
    """True priority index (0 = critical) from severity, mood, cues, customer and channel."""
    sev = world["severity"]
    score = (
        1.1 * sev
        + 0.65 * world["anger"]
        + cues @ _CUE_WEIGHTS
        + _TIER_BONUS[tier]
        + 0.3 * np.clip(np.log10(ltv + 1.0) - 3.0, -1.0, 2.0)
        + _CHANNEL_BONUS[world["channel"]]
        + 0.7 * ((tier == 3) & (sev >= 2.5))
        + rng.normal(0.0, 0.4, size=len(sev))
    )
    cuts = np.array(_PRIORITY_CUTS)
    return (score < cuts[:, None]).sum(axis=0)


# --------------------------------------------------------------------------
# Text rendering
# --------------------------------------------------------------------------


def _topic_sentences(s: _Stream, topic: _Topic, k: int) -> list[str]:
    """``k`` distinct sentences of ``topic`` (fewer if it has fewer)."""
    sentences = topic.sentences
    first = int(s.u() * len(sentences))
    step = 1 + int(s.u() * (len(sentences) - 1)) if len(sentences) > 1 else 1
    picked = [sentences[(first + i * step) % len(sentences)] for i in range(min(k, len(sentences)))]
    return list(dict.fromkeys(picked))


def _core_sentences(s: _Stream, topic: _Topic, other: _Topic, style: int, long: bool) -> list[str]:
    """The content sentences of one ticket before tone and channel dressing."""
    if style == 2:
        parts = [s.pick(_GENERIC) for _ in range(s.randint(1, 3))]
        if s.chance(0.35):
            parts.append(s.pick(other.sentences))
        return list(dict.fromkeys(parts))
    parts = _topic_sentences(s, topic, 1 + s.chance(0.55) + 2 * long)
    if style == 1:
        extra = _topic_sentences(s, other, 1 + s.chance(0.45))
        parts = extra + parts if s.chance(0.4) else parts + extra
    if s.chance(0.35 + 0.4 * long):
        parts.insert(0, s.pick(_CONTEXT))
    if long:
        parts.insert(s.randint(1, len(parts)), s.pick(_TRIED))
    if s.chance(0.15 + 0.3 * long):
        parts.append(s.pick(_GENERIC))
    return parts


def _tone(s: _Stream, parts: list[str], anger: int, cues: Sequence[bool]) -> list[str]:
    """Append sentiment and escalation sentences."""
    if anger:
        parts.append(s.pick(_ANGER[anger]))
        if anger == 2 and s.chance(0.4):
            parts.insert(0, s.pick(_ANGER[2]))
    elif s.chance(0.3):
        parts.append(s.pick(_POLITE))
    for kind, present in enumerate(cues):
        if present:
            parts.append(s.pick(_CUES[kind]))
    return parts


def _typos(s: _Stream, text: str) -> str:
    """One to three character-level slips: swaps, drops and doubled letters."""
    for _ in range(s.randint(1, 3)):
        if len(text) < 4:
            break
        i = int(s.u() * (len(text) - 2))
        kind = s.u()
        if kind < 0.4:
            text = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif kind < 0.75:
            text = text[:i] + text[i + 1 :]
        else:
            text = text[:i] + text[i] + text[i:]
    return text


def _join(s: _Stream, parts: list[str], channel: int) -> str:
    """Join sentences as the channel would show them, sometimes as a run-on."""
    if channel == 1:
        return "\n".join(p.rstrip(".") if s.chance(0.5) else p for p in parts)
    if s.chance(0.12):
        return ", ".join(p.rstrip(".!") for p in parts[:-1]) + (
            ", and " + parts[-1].lower() if len(parts) > 1 else parts[-1]
        )
    return " ".join(parts)


def _dress(s: _Stream, text: str, channel: int, language: str, slots: _Slots) -> str:
    """Wrap the message in greeting, closing and channel-specific framing."""
    if language != "en" and s.chance(0.3):
        text = f"{_SORRY[language]} {text}"
    if channel == 4:
        return (
            "@NimbusHelp "
            + text
            + (s.pick((" #fail", " #customerservice", " #help")) if s.chance(0.3) else "")
        )
    if channel == 2:
        return s.pick(("Customer called. ", "Caller says: ", "Call notes - ", "Phone: ")) + text
    greet = _GREETINGS[language] if language != "en" or s.chance(0.8) else ("",)
    greeting = s.pick(greet).format_map(slots)
    if channel == 1:
        return (greeting.rstrip(",") + "\n" + text) if greeting and s.chance(0.5) else text
    if channel == 3 and s.chance(0.3):
        text = (
            s.pick(("Order number: {order}\nDescription: ", "Message:\n", "Details: ")).format_map(
                slots
            )
            + text
        )
    closing = s.pick(_CLOSINGS[language]) if language != "en" or s.chance(0.7) else ""
    signature = slots["name"] if closing and s.chance(0.6) else ""
    tail = "\n".join(x for x in (closing, signature) if x)
    if s.chance(0.05):
        tail += "\n\nSent from my iPhone"
    return "\n\n".join(x for x in (greeting, text, tail) if x)


def _subject(
    s: _Stream, topic: _Topic, other: _Topic, category: int, channel: int, language: str
) -> str:
    """Subject line: usually the topic's, sometimes generic, empty or localized."""
    u = s.u()
    if channel in (1, 2) and u < 0.55:
        return (
            s.pick(("Chat with {name}", "Live chat", "Chat transcript"))
            if channel == 1
            else s.pick(("Phone call from {name}", "Inbound call", "Call back request"))
        )
    if channel == 4 and u < 0.6:
        return s.pick(("Twitter mention", "Facebook message", "", "Instagram DM"))
    if language != "en" and u < 0.75:
        return _LOCAL_PHRASES[language][category]
    if u < 0.04:
        return ""
    if u < 0.16:
        return s.pick(_GENERIC_SUBJECTS)
    if u < 0.24:
        return s.pick(other.subjects)
    return s.pick(topic.subjects)


def _short_text(s: _Stream, category: int) -> tuple[str, str]:
    """Subject and body of a very short ticket."""
    body = s.pick(_SHORT[category]) if s.chance(0.6) else s.pick(_SHORT_GENERIC)
    subject = s.pick(("", "help", "?", "urgent", body)) if s.chance(0.7) else ""
    return subject, body


def _casing(s: _Stream, subject: str, body: str, anger: int, channel: int) -> tuple[str, str]:
    """Shouting for angry customers, all lowercase for sloppy chat and social."""
    if anger == 2 and s.chance(0.25):
        return subject.upper(), body.upper()
    if anger == 2 and s.chance(0.3):
        subject = subject.upper() + "!!!" if subject else subject
    if channel in (1, 4) and s.chance(0.4):
        return subject, body.lower()
    if s.chance(0.03):
        return subject.lower(), body.lower()
    return subject, body


def _render(s: _Stream, row: tuple[int, ...], cues: Sequence[bool]) -> tuple[str, str]:
    """Subject and body of one ticket from its hidden variables."""
    category, topic_i, style, second, second_topic, channel, language_i, anger, long = row
    topic, other = _TOPICS[category][topic_i], _TOPICS[second][second_topic]
    language, slots = LANGUAGES[language_i], _Slots(s)
    if style == 3:
        subject, body = _short_text(s, category)
    else:
        parts = _tone(s, _core_sentences(s, topic, other, style, bool(long)), anger, cues)
        if language != "en" and s.chance(0.6):
            parts.insert(0, _LOCAL_PHRASES[language][category] + ".")
        body = _dress(s, _join(s, parts, channel), channel, language, slots)
        subject = _subject(s, topic, other, category, channel, language)
        if anger and s.chance(0.15 * anger) and subject:
            subject = "URGENT: " + subject
    subject, body = subject.format_map(slots), body.format_map(slots)
    if s.chance(0.22):
        body = _typos(s, body)
    return _casing(s, subject, body, anger, channel)


def _render_all(
    s: _Stream, world: dict[str, np.ndarray], cues: np.ndarray
) -> tuple[list[str], list[str]]:
    """Subjects and bodies of every ticket."""
    keys = (
        "category",
        "topic",
        "style",
        "second",
        "second_topic",
        "channel",
        "language",
        "anger",
        "long",
    )
    rows = zip(*(world[k].astype(int).tolist() for k in keys))
    subjects: list[str] = []
    bodies: list[str] = []
    for row, cue in zip(rows, cues.tolist()):
        subject, body = _render(s, row, cue)
        subjects.append(subject)
        bodies.append(body)
    return subjects, bodies


# --------------------------------------------------------------------------
# Label noise, agent corrections and surveys
# --------------------------------------------------------------------------


def _noisy_category(rng: np.random.Generator, world: dict[str, np.ndarray]) -> np.ndarray:
    """Original (help-desk) categories: ~6-7% wrong, mostly plausible confusions."""
    category, style = world["category"], world["style"]
    p_flip = np.where(style == 1, 0.15, np.where(style >= 2, 0.10, 0.035))
    flip = rng.random(len(category)) < p_flip
    confused = _pick_rows(rng, _CONFUSION, category)
    target = np.where(style == 1, world["second"], confused)
    return np.where(flip, target, category)


def _noisy_priority(rng: np.random.Generator, priority: np.ndarray) -> np.ndarray:
    """Original priorities: a few percent off by one level."""
    flip = rng.random(len(priority)) < 0.035
    shift = np.where(rng.random(len(priority)) < 0.5, -1, 1)
    moved = priority + shift
    moved = np.where((moved < 0) | (moved > 3), priority - shift, moved)
    return np.where(flip, moved, priority)


class _Labels(NamedTuple):
    """True and original labels (indices into CATEGORIES / PRIORITIES)."""

    true_cat: np.ndarray
    orig_cat: np.ndarray
    true_pri: np.ndarray
    orig_pri: np.ndarray


def _reason(s: _Stream, options: Sequence[str], category: str) -> str:
    """A short free-text reason, sometimes empty."""
    return s.pick(options).format(cat=category)


def _correction_rows(
    rng: np.random.Generator, s: _Stream, labels: _Labels, created_ns: np.ndarray
) -> list[tuple]:
    """Rows (ticket index, category, priority, agent, time ns, reason) of agent corrections."""
    n = len(created_ns)
    fix_cat = (labels.orig_cat != labels.true_cat) & (rng.random(n) < 0.62)
    fix_pri = (labels.orig_pri != labels.true_pri) & (rng.random(n) < 0.55)
    conflict = rng.random(n) < 0.006
    first_delay = (600 + rng.exponential(8 * 3_600, n)).astype(np.int64) * 1_000_000_000
    second_delay = (3_600 + rng.exponential(24 * 3_600, n)).astype(np.int64) * 1_000_000_000
    wrong = _pick_rows(rng, _CONFUSION, labels.true_cat)
    rows: list[tuple] = []
    for i in np.flatnonzero(fix_cat | fix_pri | conflict).tolist():
        when = int(created_ns[i] + first_delay[i])
        true_cat = CATEGORIES[labels.true_cat[i]]
        if conflict[i]:
            rows.append(
                (
                    i,
                    CATEGORIES[wrong[i]],
                    None,
                    s.pick(_AGENTS),
                    when,
                    _reason(s, _CATEGORY_REASONS, CATEGORIES[wrong[i]]),
                )
            )
            when += int(second_delay[i])
        category = true_cat if fix_cat[i] or conflict[i] else None
        priority = PRIORITIES[labels.true_pri[i]] if fix_pri[i] else None
        reasons = (
            _CONFLICT_REASONS
            if conflict[i]
            else _CATEGORY_REASONS
            if category
            else _PRIORITY_REASONS
        )
        rows.append((i, category, priority, s.pick(_AGENTS), when, _reason(s, reasons, true_cat)))
    return rows


def _feedback_frame(rows: list[tuple], ticket_ids: list[str]) -> pd.DataFrame:
    """Agent corrections as a frame sorted by ``corrected_at``."""
    rows = sorted(rows, key=lambda r: (r[4], r[0]))
    columns = list(zip(*rows)) if rows else [()] * 6
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([ticket_ids[i] for i in columns[0]], dtype="str"),
            "corrected_category": pd.Series(list(columns[1]), dtype="str"),
            "corrected_priority": pd.Series(list(columns[2]), dtype="str"),
            "agent_id": pd.Series(list(columns[3]), dtype="str"),
            "corrected_at": pd.to_datetime(
                np.array(columns[4], dtype=np.int64), unit="ns", utc=True
            ),
            "reason": pd.Series(list(columns[5]), dtype="str"),
        }
    )


def _survey_frame(
    rng: np.random.Generator,
    s: _Stream,
    world: dict[str, np.ndarray],
    labels: _Labels,
    created_ns: np.ndarray,
    ticket_ids: list[str],
) -> pd.DataFrame:
    """CSAT surveys for ~30% of tickets; angry, urgent or misrouted customers score lower."""
    n = len(created_ns)
    answered = rng.random(n) < 0.27 + 0.05 * (world["anger"] > 0)
    misrouted = labels.orig_cat != labels.true_cat
    latent = (
        4.3
        - 0.5 * world["anger"]
        - 0.3 * (labels.true_pri <= 1)
        + _CATEGORY_CSAT[labels.true_cat]
        - 0.5 * misrouted
        + rng.normal(0.0, 0.9, n)
    )
    csat = np.clip(np.rint(latent), 1, 5).astype(np.int64)
    delay = (6 * 3_600 + rng.exponential(40 * 3_600, n)).astype(np.int64) * 1_000_000_000
    idx = np.flatnonzero(answered)
    buckets = np.where(csat[idx] <= 2, 0, np.where(csat[idx] == 3, 1, 2)).tolist()
    comments = [
        "" if s.chance(0.45) else s.pick(_SURVEY_COMMENTS[b]).format(agent=s.pick(_FIRST))
        for b in buckets
    ]
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([ticket_ids[i] for i in idx.tolist()], dtype="str"),
            "csat": csat[idx],
            "comment": pd.Series(comments, dtype="str"),
            "answered_at": pd.to_datetime(created_ns[idx] + delay[idx], unit="ns", utc=True),
        }
    )


# --------------------------------------------------------------------------
# Assembly and public API
# --------------------------------------------------------------------------


class _Simulation(NamedTuple):
    """Tickets without labels plus the hidden state needed to label them."""

    frame: pd.DataFrame
    world: dict[str, np.ndarray]
    priority: np.ndarray
    created_ns: np.ndarray


def _simulate(
    rngs: Sequence[np.random.Generator],
    n: int,
    start: pd.Timestamp,
    end: pd.Timestamp,
    prefix: str,
    min_offset: int = 0,
) -> _Simulation:
    """Draw ``n`` tickets between ``start`` and ``end`` (labels not attached yet)."""
    world_rng, text_rng = rngs[0], rngs[1]
    offsets = np.maximum(_created_offsets(world_rng, n, start, end), min_offset)
    universe = _customer_universe(max(50, n // 3))
    customer = world_rng.choice(len(universe["id"]), size=n, p=universe["weight"])
    tier, ltv = universe["tier"][customer], universe["ltv"][customer]
    world = _draw_world(world_rng, n)
    cues = _draw_cues(world_rng, world, tier)
    priority = _priority(world_rng, world, cues, tier, ltv)
    subjects, bodies = _render_all(_Stream(text_rng), world, cues)
    created_ns = start.value + offsets.astype(np.int64) * 1_000_000_000
    frame = pd.DataFrame(
        {
            "ticket_id": pd.Series([f"{prefix}-{i:07d}" for i in range(1, n + 1)], dtype="str"),
            "created_at": pd.to_datetime(created_ns, unit="ns", utc=True),
            "channel": pd.Series(np.array(CHANNELS, dtype=object)[world["channel"]], dtype="str"),
            "customer_id": pd.Series(universe["id"][customer], dtype="str"),
            "customer_tier": pd.Series(np.array(TIERS, dtype=object)[tier], dtype="str"),
            "customer_ltv": ltv.astype(np.float64),
            "language": pd.Series(
                np.array(LANGUAGES, dtype=object)[world["language"]], dtype="str"
            ),
            "subject": pd.Series(subjects, dtype="str"),
            "body": pd.Series(bodies, dtype="str"),
        }
    )
    return _Simulation(frame, world, priority, created_ns)


def _rngs(seed: int, purpose: int) -> list[np.random.Generator]:
    """Independent generators for world, text, labels and side tables."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    children = np.random.SeedSequence([seed, purpose]).spawn(4)
    return [np.random.default_rng(child) for child in children]


def generate(
    n_tickets: int, months: int = 6, seed: int = 0, start: datetime | None = None
) -> SyntheticData:
    """Generate a labeled ticket history with agent corrections and CSAT surveys.

    Args:
        n_tickets: number of tickets (at least 1).
        months: length of the history in calendar months (at least 1).
        seed: non-negative seed; the same arguments give identical data.
        start: first moment of the history (naive means UTC); 2026-01-01 UTC by default.

    Returns:
        Tickets (original labels, a few percent wrong), the agent corrections
        (latest correction per field is the truth) and the surveys.

    Raises:
        ValueError: if ``n_tickets`` or ``months`` is below 1 or ``seed`` is negative.
    """
    if n_tickets < 1 or months < 1:
        raise ValueError("n_tickets and months must be at least 1")
    rngs = _rngs(seed, 0)
    begin = _utc(start, DEFAULT_START)
    sim = _simulate(rngs, n_tickets, begin, begin + pd.DateOffset(months=months), "TCK")
    label_rng, side_rng = rngs[2], rngs[3]
    labels = _Labels(
        sim.world["category"],
        _noisy_category(label_rng, sim.world),
        sim.priority,
        _noisy_priority(label_rng, sim.priority),
    )
    tickets = sim.frame.assign(
        category=pd.Series(np.array(CATEGORIES, dtype=object)[labels.orig_cat], dtype="str"),
        priority=pd.Series(np.array(PRIORITIES, dtype=object)[labels.orig_pri], dtype="str"),
    )
    ids = tickets["ticket_id"].tolist()
    side_stream = _Stream(side_rng)
    feedback = _feedback_frame(_correction_rows(side_rng, side_stream, labels, sim.created_ns), ids)
    surveys = _survey_frame(side_rng, side_stream, sim.world, labels, sim.created_ns, ids)
    return SyntheticData(tickets=tickets, feedback=feedback, surveys=surveys)


def generate_unlabeled(
    n_tickets: int, seed: int = 0, start: datetime | None = None, days: int = 7
) -> pd.DataFrame:
    """Generate new, unlabeled tickets to score.

    Args:
        n_tickets: number of tickets (at least 1).
        seed: non-negative seed; the same arguments give identical data.
        start: tickets are created strictly after this moment (naive means
            UTC); 2026-07-01 UTC by default, right after a default 6-month history.
        days: length of the window after ``start``.

    Returns:
        The ticket columns without ``category`` and ``priority``; ids look
        like ``NEW-0000001`` so they never collide with :func:`generate`'s.
        Customers come from the same fixed customer base as :func:`generate`.

    Raises:
        ValueError: if ``n_tickets`` or ``days`` is below 1 or ``seed`` is negative.
    """
    if n_tickets < 1 or days < 1:
        raise ValueError("n_tickets and days must be at least 1")
    begin = _utc(start, DEFAULT_UNLABELED_START)
    sim = _simulate(
        _rngs(seed, 1), n_tickets, begin, begin + pd.Timedelta(days=days), "NEW", min_offset=1
    )
    return sim.frame


def write(data: SyntheticData, out_dir: Path) -> dict[str, Path]:
    """Write the three tables as UTF-8 CSV files (header, no index).

    Args:
        data: what :func:`generate` returned.
        out_dir: target folder, created if missing.

    Returns:
        ``{"tickets": path, "feedback": path, "surveys": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, frame in (
        ("tickets", data.tickets),
        ("feedback", data.feedback),
        ("surveys", data.surveys),
    ):
        paths[name] = out_dir / f"{name}.csv"
        frame.to_csv(paths[name], index=False, encoding="utf-8", lineterminator="\n")
    return paths
