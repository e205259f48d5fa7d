"""The write side's event classes, by name, for the read side to match on.

The `@event` decorator creates these classes at import time, so type checkers cannot see them
as attributes; naming them once here keeps every projection readable and checked.
"""

from __future__ import annotations

from typing import Any

from domain.catalogue import City, Meal, Venue
from domain.fridge import Fridge
from domain.order import Order

_fridge: Any = Fridge
_order: Any = Order
_city: Any = City
_venue: Any = Venue
_meal: Any = Meal

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

OrderPlaced: type = _order.Placed
PaymentAuthorised: type = _order.PaymentAuthorised
ReadyForPickup: type = _order.ReadyForPickup
OrderPickedUp: type = _order.PickedUp
OrderCancelled: type = _order.Cancelled
PaymentFailed: type = _order.PaymentFailed
OrderExpired: type = _order.Expired
OrderRefunded: type = _order.Refunded

CityRegistered: type = _city.Registered
VenueRegistered: type = _venue.Registered
MealRegistered: type = _meal.Registered
MealRepriced: type = _meal.Repriced
