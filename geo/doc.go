// Package geo holds wherehouse's geometry: pure functions, no I/O.
//
// Coarsen blurs positions for viewers allowed only a coarse location.
//
// Geofences are a Shape (a circle from NewCircle, or a polygon from
// GeoJSON by ParseGeometry) with Rules, gathered in a Fence. An Index
// finds the fences near a fix; Step decides, from the State a device has
// for a fence and its next Fix, whether it entered or left, and Due fires
// a delayed transition when no fix comes. Step and Due are deterministic
// functions of their arguments, so the caller persists State and can
// replay fixes after a restart without firing twice.
//
// Positions are WGS84 degrees taken on a sphere; distances are in metres.
// There is no antimeridian support: a fence meant to cross the 180°
// meridian must be drawn as two polygons.
package geo
