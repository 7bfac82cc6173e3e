/**
 * Vocabulary and sentence templates of the templated story used by the three story tasks. Written
 * for this project. Placeholders: {hero} protagonist, {place} location, {who} character,
 * {event}, {item} (with its article), {sold} (an item being sold, with "the").
 */

/** A comma-separated list, spread over lines. */
function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export const PROTAGONIST = 'Arion';

export const CHARACTERS: readonly string[] = list(`
Marcus, Selene, Cassius, Daria, Niko, Iris, Leon, Marina, Octavia, Petros, Lyra, Thanos,
Eliana, Hector, Rhea, Adrian, Sophia, Dorian, Cleo, Phaedra, Lysander, Callisto, Evander,
Hermia, Althea, Brynn, Cyrus, Damon, Eirene, Felix, Gaia, Hylas, Ianthe, Jonas, Kallias, Leda,
Myrto, Nestor, Orestes, Penelope, Quintus, Roxana, Stavros, Timon, Urania, Vitalis, Xanthe,
Yanis, Zenobia, Alaric, Berenike, Corvin, Delphine, Erasmus, Fabia, Galen, Helena, Ismene,
Julian, Kyra, Lucian, Melina, Nerissa, Otho, Priam, Sabina, Tiberius, Valeria, Xenon, Zephyra
`);

export const LOCATIONS: readonly string[] = list(`
Alexandria, Byzantium, Rhodes, Carthage, Athens, Rome, Sparta, Babylon, Memphis, Thebes, Troy,
Delphi, Ephesus, Pergamon, Syracuse, Corinth, Knossos, Miletus, Argos, Olympia, Halicarnassus,
Mycenae, Antioch, Palmyra, Damascus, Persepolis, Susa, Nineveh, Tyre, Sidon, Petra, Cyrene,
Leptis Magna, Caesarea, Nicaea, Thessalonica, Philippi, Ravenna, Massilia, Londinium, Lutetia,
Tarraco, Tingis, Ctesiphon, Taxila, Merv, Samarkand, Bukhara, Axum, Meroe, Napata, Gades,
Sardis, Smyrna, Tarsus, Salamis, Paphos, Sinope, Trapezus, Olbia, Naucratis, Cnidus, Pella,
Dodona, Eretria, Megara, Ostia, Neapolis, Aquileia, Colchis
`);

export const EVENTS: readonly string[] = list(`
a grand festival, a violent storm, a secret treaty, an unexpected betrayal,
a tense negotiation, a mysterious disappearance, a lavish wedding feast,
an outbreak of fighting, a solemn ceremony, a dangerous ambush, a sudden market crash,
a surprising alliance, a forbidden ritual, an urgent council meeting, a spreading rumor,
a crowded chariot race, a chaotic uprising, a quiet funeral procession, a midnight duel,
a rare eclipse
`);

export const ITEM_ADJECTIVES: readonly string[] = list(`
ancient, ornate, engraved, weathered, gilded, polished, exquisite, intricate, delicate, sturdy,
mystic, legendary, pristine, refined, timeworn, ceremonial, lavish, forgotten
`);
export const ITEM_MATERIALS: readonly string[] = list(`
bronze, silver, gold, ivory, jade, emerald, crystal, obsidian, ruby, sapphire, marble, amber,
copper, lapis, porcelain
`);
export const ITEM_KINDS: readonly string[] = list(`
amulet, figurine, sword, shield, goblet, necklace, ring, statuette, pendant, candelabra,
anklet, comb, seal, chalice, horn, key, bracelet, mask, lamp, idol, vase
`);

export const ARRIVAL: readonly string[] = [
  'Late in the afternoon, {hero} arrived in {place}, where the streets hummed with distant voices.',
  'At first light, {hero} passed through the gates of {place}, among merchants and travelers.',
  'As evening fell, {hero} entered {place}, whose quiet lanes seemed to keep their own secrets.',
  'Under a pale sky, {hero} approached {place}, listening to every whisper on the wind.',
  'After a long road, {hero} finally reached {place} and paused to take in the view.',
  'The harbor bells were ringing when {hero} stepped ashore at {place}.',
  '{hero} came upon {place}, where old walls and new faces stood side by side.',
  'With the sun still high, {hero} walked into {place}, curious about what it offered.',
];

export const REASON: readonly string[] = [
  '{hero} had come hoping to learn something new, or perhaps to gain an advantage.',
  'Rumors had led {hero} to {place}, hinting at knowledge or wealth.',
  'Tired from the journey, {hero} looked to {place} for rest and insight.',
  '{hero} believed that {place} hid an answer behind its calm face.',
  'A quiet determination had brought {hero} this far, still searching for meaning.',
  'Instinct told {hero} that {place} would reveal something of value.',
];

export const EVENT: readonly string[] = [
  'Soon after the arrival, {event} shook the local order.',
  "Before long, {event} had seized everyone's attention.",
  'Within hours, {event} disrupted the familiar routines of {place}.',
  'Hardly had {hero} settled before {event} stirred uneasy whispers.',
  'Like a ripple in still water, {event} spread through {place}.',
  'The calm broke when {event} brought both fear and opportunity.',
];

export const ENCOUNTER: readonly string[] = [
  'There, {hero} met {who}, who seemed eager to trade words and goods.',
  'In a shaded courtyard, {hero} was greeted by {who}, a figure of quiet ambition.',
  '{who} approached {hero} with bright, calculating eyes.',
  'It was {who} who stepped forward to offer {hero} guidance, or perhaps misdirection.',
  '{who} emerged from the crowd and greeted {hero} with a knowing smile.',
  'Among the gathered faces, {who} beckoned {hero} closer.',
];

export const TALK: readonly string[] = [
  'In hushed tones, they spoke of local customs and distant rumors.',
  'The two discussed the changing fortunes of traders and travelers.',
  'They lingered over tales of old alliances and forgotten disputes.',
  'Together they reflected on trust and deceit, knowing how fate can twist.',
  'They debated the meaning of recent events, each looking for a pattern.',
  'Quiet words passed between them about a larger puzzle taking shape in {place}.',
  'They considered old legends that still echoed in the empty alleys of {place}.',
  'They whispered about shifting loyalties, where even a friend might be uncertain.',
  'They compared notes on the merchants who had passed through {place} that season.',
  'Their talk turned to supply and demand, and how quickly fortunes can turn.',
  'They wondered about the silent watchers said to linger in the shadows of {place}.',
  'They recalled strange visitors who had brought either wisdom or confusion.',
];

export const BUY: readonly string[] = [
  'After careful bargaining, {hero} bought {item} from {who}.',
  '{hero} paid {who} a fair price and acquired {item}.',
  'Seeing value in the offer, {hero} purchased {item} from {who}.',
  '{who} handed over {item}, which {hero} had just bought.',
  'Coins changed hands as {hero} obtained {item} from {who}.',
  'The deal was struck, and {hero} became the new owner of {item}, bought from {who}.',
];

export const SELL: readonly string[] = [
  'With practiced ease, {hero} sold {sold} to {who}.',
  '{hero} parted with {sold}, selling it to {who} for a good sum.',
  '{who} agreed to buy {sold} from {hero}.',
  'Before leaving, {hero} traded away {sold} to {who}.',
];

export const FAREWELL: readonly string[] = [
  '{hero} bid {who} a measured farewell.',
  'With a final nod, {hero} parted ways with {who}.',
  '{hero} offered {who} a calm goodbye.',
  '{hero} and {who} exchanged polite goodbyes.',
  'No more words were needed, and {hero} stepped away from {who}.',
];

export const CONCLUSION: readonly string[] = [
  'Eventually, {hero} moved on, carrying new impressions forward.',
  'The chapter closed as {hero} left {place} to its own mysteries.',
  'With quiet resolve, {hero} carried these moments into the unknown.',
  'As the day waned, {hero} held new pieces of a greater puzzle.',
  'Nothing felt quite the same as {hero} left {place}, thoughts turning inward.',
];

/** Atmosphere without facts: fine-grained padding added to chapters to reach the target length. */
export const ATMOSPHERE: readonly string[] = [
  'Shadows stretched long across the stones.',
  'The distant hum of voices hinted at unseen deals.',
  'Old stones bore silent witness to countless secrets.',
  'A subtle tension lingered, as though the city held its breath.',
  'In quiet corners, ambitions simmered, waiting for a spark.',
  'The smell of spices and smoke drifted through the air.',
  'Somewhere a gull cried over the rooftops.',
  'Dust rose where the carts rolled past.',
  'A lantern swayed in the evening breeze.',
  'Far away, a temple bell sounded the hour.',
  'The scent of rain hung over the rooftops.',
  'Children ran laughing between the market stalls.',
];
