"""The write side's event classes, by name, for the read side to match on.

The order's and the catalogue's events are declared classes on their aggregates; the
fridge's are still made by the `@event` decorator at import time, so type checkers cannot see
them as attributes, and naming them once here keeps every projection readable.
"""

from __future__ import annotations

from typing import Any

from domain.catalogue import City, Meal, Venue
from domain.fridge import Fridge
from domain.order import Order

_fridge: Any = Fridge

FridgeInstalled: type = _fridge.Installed
MealsDelivered: type = _fridge.MealsDelivered
CountsReported: type = _fridge.CountsReported
StockAdjusted: type = _fridge.StockAdjusted
MealsExpired: type = _fridge.MealsExpired
ReservedMealsMissing: type = _fridge.ReservedMealsMissing
MealsReserved: type = _fridge.MealsReserved
ReservationConfirmed: type = _fridge.ReservationConfirmed
ReservationReleased: type = _fridge.ReservationReleased
MealsPickedUp: type = _fridge.MealsPickedUp
FridgeTakenOffline: type = _fridge.TakenOffline
FridgeBackOnline: type = _fridge.BackOnline
FridgeRetired: type = _fridge.Retired

OrderPlaced = Order.Placed
PaymentAuthorised = Order.PaymentAuthorised
ReadyForPickup = Order.ReadyForPickup
OrderPickedUp = Order.PickedUp
OrderCancelled = Order.Cancelled
PaymentFailed = Order.PaymentFailed
OrderExpired = Order.Expired
OrderRefunded = Order.Refunded

CityRegistered = City.Registered
VenueRegistered = Venue.Registered
MealRegistered = Meal.Registered
MealRepriced = Meal.Repriced
