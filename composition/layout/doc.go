// Package layout decides where each participant of a stage goes in a
// composition's picture: the geometry of Amazon IVS server-side composition's
// two layouts, grid and picture-in-picture (PiP). It knows nothing of media;
// the codec engine takes the tiles it returns and crops, scales and overlays
// the participants' decoded video accordingly.
//
// What IVS documents, and where it comes from:
//
//   - The fields, their allowed values and their defaults are those of the
//     LayoutConfiguration, GridConfiguration and PipConfiguration shapes of
//     the IVS Real-Time API (botocore's ivs-realtime 2020-07-14 model, the
//     same text as the API reference): a grid when neither layout is given;
//     gridGap 2 in a grid and 0 in PiP; videoAspectRatio VIDEO (16:9),
//     SQUARE (1:1), PORTRAIT (3:4) or AUTO; videoFillMode FILL (stretched),
//     COVER (cropped) or CONTAIN (letterboxed), defaulting in a grid to
//     COVER for the grid's tiles and CONTAIN for the featured participant,
//     and in PiP to COVER; pipPosition BOTTOM_RIGHT; pipOffset 0 from the
//     closest edges; pipBehavior STATIC (keeps its position and size when
//     everyone else has left) or DYNAMIC (expands to the full composition);
//     pipWidth and pipHeight, when unset, "based on the size of the
//     composition and the aspect ratio of the participant's video".
//   - A participant whose token attribute named by featuredParticipantAttribute
//     (or pipParticipantAttribute) is the string "true" takes the featured
//     slot (or the PiP window): the API reference and the user guide's
//     "Enabling Screen Share in IVS Server-Side Composition".
//   - Ordering by participantOrderAttribute, from the user guide's "Custom
//     Participant Ordering": participants with the attribute come first,
//     sorted numerically (negative values before positive, "10" after "9");
//     equal values, and every participant without a usable value, follow
//     arrival order; a non-numeric value such as "abc" or "1.5" counts as no
//     value. The same order decides who takes the featured slot and the PiP
//     window when more than one participant could.
//   - A stage has at most 12 publishers (IVS Real-Time service quotas; the
//     sfu enforces the same number), so a composition shows at most
//     MaxParticipants.
//
// The geometry itself (how many rows and columns, where the featured
// participant sits, what AUTO means, the default PiP size) is not
// documented; the choices made here are described beside the code that
// makes them, and are what a user of IVS would expect from its pictures:
// equal tiles as large as the canvas allows, a partial last row centred, the
// featured participant large with the others in a strip beside it.
//
// Every rectangle returned has even coordinates and sizes, because the
// 4:2:0 video the engine encodes cannot place or size a picture on an odd
// pixel, and every one lies inside the canvas. The same input always gives
// the same output, whatever order the participants are listed in.
package layout
