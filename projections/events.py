"""The write side's event classes, by the names the read side matches on.

Every aggregate declares its events as classes; this module only gives them short names
(`FridgeInstalled` for `Fridge.Installed`) so that projections read well.
"""

from __future__ import annotations

from domain.catalogue import City, Meal, Venue
from domain.fridge import Fridge
from domain.order import Order

FridgeInstalled = Fridge.Installed
MealsDelivered = Fridge.MealsDelivered
CountsReported = Fridge.CountsReported
StockAdjusted = Fridge.StockAdjusted
MealsExpired = Fridge.MealsExpired
ReservedMealsMissing = Fridge.ReservedMealsMissing
MealsReserved = Fridge.MealsReserved
ReservationConfirmed = Fridge.ReservationConfirmed
ReservationReleased = Fridge.ReservationReleased
MealsPickedUp = Fridge.MealsPickedUp
FridgeTakenOffline = Fridge.TakenOffline
FridgeBackOnline = Fridge.BackOnline
FridgeRetired = Fridge.Retired

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
