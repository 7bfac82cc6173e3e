/**
 * Plain English words (nouns, verbs, adjectives; lowercase letters only, no duplicates) for the
 * common-words task. Written for this project.
 */
const RAW = `
apple anchor angle animal answer apron arch arena arm army arrow artist ash attic aunt autumn avenue axe
baby back badge bag bakery balance balcony ball balloon band bank banner barn barrel basin basket bath
battery beach beam bean bear beard bed bee beetle bell belt bench berry bicycle bird biscuit blade blanket
block blossom board boat body bolt bone book boot border bottle bottom boulder bowl box boy bracket brain
branch brass bread brick bride bridge brook broom brother brush bubble bucket bud buffalo building bulb
bull bundle bush butter button cabin cabinet cable cactus cake calendar calf camel camera camp canal candle
candy cane canoe canvas canyon cap captain car card carpet carriage carrot cart castle cat cattle cave
ceiling cellar cement chain chair chalk channel chapel cheese cherry chess chest chicken child chimney chin
chip church circle city clay cliff clock cloth cloud clover coach coal coast coat cobweb coconut coffee
coin collar colony comb comet compass cone cookie copper cord cork corn corner cottage cotton couch country
cousin cow crab cradle crane crate crayon cream creek crew cricket crop crow crown crystal cup cupboard
curtain cushion dagger dairy daisy dam dancer deck deer desert desk diamond dinner dish ditch doctor dog
doll dolphin donkey door dragon drain drawer dress drum duck dune dust eagle ear earth easel egg elbow
elephant elm engine envelope eye fabric face factory fairy falcon family fan farm farmer feather fence fern
ferry field fig finger fire fireplace fish flag flame flask fleet flock floor flour flower flute fog foot
forest fork fort fountain fox frame frog fruit funnel fur furnace galaxy garage garden garlic gate gear
gem ghost giant giraffe girl glacier glass glove goat gold goose gorilla gown grain grape grass gravel
guitar gull hall hammer hammock hand handle harbor harp hat hawk hay head hedge helmet hen herb hill hinge
hive hoof hook horn horse hose hospital hotel house hut ice igloo inch ink insect iron island ivy jacket
jar jaw jelly jewel judge jug juice kettle key kitchen kite kitten knee knife knot ladder lake lamb lamp
lantern lap leaf leather lemon lens leopard letter library lid lily lime lion lip lizard lobster lock
locket log loom lumber lung magnet mailbox mango map maple marble market mask mast mat meadow melon
mermaid meteor milk mill mirror mitten mole monkey moon moss moth mountain mouse mouth mud mug mule
muscle museum mushroom nail napkin neck needle nest net nickel night nose notebook nut oak oar oasis ocean
office olive onion orange orchard organ ostrich otter oven owl ox oyster paddle page pail paint palace
palm pan panda paper parade parcel parrot pasta path peach peacock pear pearl pebble pedal pen pencil
penguin pepper piano pickle picture pie pier pig pigeon pillow pilot pine pipe pirate pitcher plane planet
plank plant plate plum pocket poem pole pond pony porch pot potato pouch powder prince princess pumpkin
puppet puppy purse puzzle quail queen quilt rabbit raccoon radio raft rail rain rainbow rake ram ranch
raven razor reed reef ribbon rice ridge ring river road robe robin rock rocket roof room rooster root rope
rose rug ruler saddle sail sailor salad salt sand sandal satchel sauce saucer scarf school scissors
scroll sea seal seed shadow shark shawl sheep shelf shell shield ship shirt shoe shop shore shovel shrub
silk silver singer sink skate skirt skull sky sled sleeve slipper snail snake snow soap sock sofa soil
soldier soup spade sparrow spear spice spider spine sponge spoon spring square squirrel stable stage stair
stamp star statue steam steel stem stick stone stool storm stove straw stream street string submarine sugar
suit summer sun swan sweater sword table tail tank tea teacher teapot tent thimble thread throat throne
thumb ticket tiger tile timber toad toast toe tomato tongue tool tooth torch tower town toy tractor train
tray treasure tree triangle trolley trophy truck trumpet trunk tulip tunnel turkey turtle twig umbrella
uncle valley van vase vest village vine violin volcano wagon waist wall wallet walnut walrus wand wardrobe
wasp watch water wave wax weasel web well whale wheat wheel whistle wig willow window wing winter wire
wizard wolf wood wool worm wreath wrist yacht yard yarn zebra zipper
account action advice agreement amount appeal approval argument arrival aspect attempt attention balloting
beauty behavior belief benefit birth blame bonus boundary bravery breath budget burden business calm care
career cause chance change charity choice claim class climate comfort command comment commerce company
comparison concern condition conduct conflict confusion connection consent contest contract control
courage course craft credit crime crisis culture custom damage danger data deal debate debt decision
defense degree delay delight demand design desire detail device dignity direction discovery disease
distance doubt dream duty effort election emotion energy error escape estate event evidence example
exchange excuse exercise expert failure faith fame fashion fault favor fear feature fiction figure finance
flavor focus force fortune freedom friendship function future gift glory goal gossip grace growth guidance
guilt habit harmony health heat height history hobby honor hope humor hunger idea image impact income
industry influence injury inquiry instance interest issue journey joy justice kindness knowledge labor
language laughter lesson level liberty limit loyalty luck luxury manner marriage matter meaning measure
medicine memory mercy message method mind minute mission mistake moment mood motion music mystery nature
need news noise notion number object offer opinion order origin outcome pace pain panic passion patience
pattern peace penalty period permit person phrase pleasure poetry policy pressure pride principle prison
problem process profit progress project promise proof property purpose quality quantity question quiet
range rank rate reason record reform region relief remedy report request rescue research respect result
reward rhythm riddle right risk role routine rule safety sample scale scene science score secret sense
series service session shame shape share signal silence skill sleep slogan smile society solution sorrow
sound source space speech speed spirit sport stake standard status strategy strength stress structure
style subject success summary supply support surface surprise survey symbol system talent target task taste
temper tension term territory theory thought threat title topic total trade tradition traffic training
trait travel treaty trend trial trouble trust truth union unity value variety venture version victory view
virtue vision visit voice volume vote wage warmth wealth weather weight welfare wisdom wish wonder worth
youth zeal
absorb accept achieve acquire adapt add adjust admire admit adopt advise afford agree aim allow amaze
amuse announce annoy appear apply approve argue arrange arrest arrive ask assist assume attach attack
attend attract avoid awake bake balance bang bathe battle beam beg behave believe belong bend bet bite
bleach bless blink blush boast boil borrow bounce bow breathe brew bring broadcast build bump burn bury
calculate carry carve catch celebrate challenge charge chase cheat check cheer chew choke chop clap clean
clear climb cling close coil collect comb compare compete complain complete concentrate confess confuse
connect consider contain continue copy correct cough count cover crack crash crawl create creep cross
crush cry cure curl cycle dance dare decay deceive decide declare decorate defeat defend delay deliver
depend describe deserve destroy detect develop dig dine direct disagree disappear discover dislike dive
divide drag drain draw dress drift drill drink drip drop drown dry earn eat educate embrace employ empty
encourage end enjoy enter entertain escape examine excite excuse exist expand expect explain explode
explore express extend face fade fail fasten fax fear feed fetch file fill film find fit fix flap flash
float flood flow fold follow fool forbid forgive form freeze frighten fry gather gaze giggle glow glue
grab grasp greet grin grind grip groan grow growl guard guess guide hammer handle hang happen harm hatch
heal heap hear help hesitate hide hike hold hop hope hover hug hum hunt hurry identify ignore imagine
impress improve include increase inform inject injure insist inspect inspire instruct intend introduce
invent invite itch jog join joke judge juggle jump kick kneel knit knock label land last laugh launch lean
leap learn lend lick lift lighten limp listen load lock long look love manage march mark marry match mate
measure melt mend milk mine miss mix moan moor mourn move mow muddle mumble murmur nest nod note notice
obey observe obtain occur offend offer open operate order organize owe own pack paddle paint park pass
pause peck pedal peel peep perform permit persuade pick pinch pine place plan play plead please plug
point poke polish pop possess pour practice pray preach prefer prepare present preserve press pretend
prevent prick print produce program promise protect provide pull pump punch punish push puzzle question
queue race radiate rain raise reach realize receive recognize recommend reduce reflect refuse regret
reign reject rejoice relax release rely remain remember remind remove repair repeat replace reply
represent request rescue retire return rinse risk rob rock roll rot rub ruin rule rush sail satisfy save
saw scare scatter scold scorch scrape scratch scream screw scribble scrub seal search select sew shade
shake shave shelter shiver shock shop shrug sigh sign signal sink sip ski skip slap slip slow smash smell
smile smoke snatch sneeze sniff snore snow soak soothe sound spare spark sparkle spell spill spoil spray
sprout squash squeak squeal squeeze stamp stare start stay steer step stir stitch stop store strap
strengthen stretch strip stroke stuff subtract succeed suck suffer suggest supply suppose surround
suspect suspend swap sway swing switch tame tap taste tease telephone tempt terrify thank thaw tick tickle
tie tip tire touch tour tow trace trade train transport trap travel treat tremble trick trip trot trust
try tug tumble turn twist type undress unfasten unite unlock unpack untidy use vanish visit wail wait
walk wander want warn wash waste watch water wave weigh welcome whine whip whirl whisper whistle wink
wipe wish wobble wonder work worry wrap wreck wrestle wriggle yawn yell zip zoom
able active adorable afraid agile alert alive ample ancient angry anxious arctic aromatic ashamed awful
awkward bald bare basic bitter bland blank bleak blind blissful blunt bold bony bossy bouncy brave brief
bright brilliant brisk broad bronze bumpy busy calm capable careful careless cautious charming cheap
cheerful chilly chubby clever cloudy clumsy coarse cold colorful comfy common complex cozy crafty crazy
creamy crisp crooked crowded cruel cuddly curious curly cute damp dapper daring dark dazzling dead deaf
dear decent deep dense dental dim dirty dizzy dreary dry dull dusty eager early earnest easy elastic
elderly elegant empty endless enormous equal even evil exact excited exotic faint fair faithful fake
famous fancy fast fat fearless feeble fierce filthy fine firm fit fixed flaky flat flimsy fluffy fond
foolish formal fragile frail frank free fresh friendly frosty frozen frugal full funny fuzzy gentle
giant giddy gifted glad gleaming glossy gloomy golden good gorgeous graceful grand grateful greasy great
greedy grim grumpy guilty hairy handsome handy happy hard harsh hasty healthy heavy helpful hollow honest
hot huge humble hungry husky icy idle ill immense innocent intense jolly juicy keen kind lame large late
lazy lean legal level light likely lively lonely long loose loud lovely loyal lucky lumpy mad magical
major massive mature meager mean meek mellow merry messy mild minor misty modern modest moist muddy
mute narrow nasty neat needy nervous new nice nimble noble noisy normal numb obedient odd oily old open
orderly ornate pale patient perfect petite plain pleasant plump polite poor precious pretty prickly
proper proud puny pure quaint quick quiet rapid rare raw ready real rich rigid ripe robust rough round
royal rude rugged rusty sad safe salty sandy scarce scary secret selfish serious shabby shaggy shallow
sharp shiny short shy silent silly simple sincere skinny sleepy slender slim slippery slow small smart
smooth snug soft soggy solid sour spare speedy spicy spiky splendid spotless square stable stale steady
steep sticky stiff stormy stout strange strict strong stubborn sturdy subtle sudden sunny super sweet
swift tall tame tangy tart tender tense thick thin thirsty tidy tight tiny tired tough tricky true ugly
unique upset urban useful vague vain valid vast velvet vivid wary weak weary wet whole wicked wide wild
windy wise witty wobbly wooden worthy young yummy zany zealous
acorn adder alley almond amber antler apricot attic avocado azalea bagel bamboo banjo barley basil bazaar
beacon beaver beetroot bellows bison blender blimp bonnet bouquet bracelet bramble brooch buckle bugle
burrow cabbage cactus caddy canary candor cannon capsule caramel caravan cargo cashew catapult cedar
celery chalice chariot cheetah chestnut chipmunk cider cinnamon clam clarinet cobbler cockpit cocoa
condor coral cormorant corridor cougar coyote cranberry crater crescent crocodile crumb cucumber cymbal
dandelion dart delta denim dinghy dove dragonfly dumpling eel elk emerald falconry fiddle finch fjord
flamingo flint foal freckle fudge gadget gazelle gecko geyser ginger glider goblet gondola gourd granite
griddle grove gumdrop hamster harness hatchet hazel hedgehog heron hickory honey hornet hyena iceberg
iguana ingot jackal jasmine javelin jellyfish juniper kayak kelp kernel kiwi koala ladle lagoon larch
lasso lava lettuce lichen lilac limestone linen llama locust lute lynx macaw magpie mammoth manatee
mandolin marsh meringue mesa midge minnow mint moccasin molasses monsoon moose mortar muffin mussel
mustard nectar newt nutmeg oatmeal octopus orchid osprey otter paddock pagoda pancake panther papaya
parsley pasture peanut pebble pelican peppermint perch pheasant pinecone pistachio plateau platypus
plover poodle poppy porcupine prairie pretzel prism puffin quartz quince radish raisin rattle reindeer
rhubarb riverbank rosemary saffron sage salmon sapling sardine sausage scallop seahorse sequoia sesame
shrimp skunk sleigh sloth snapdragon sorrel spinach sprocket spruce stallion starfish stork sunflower
swallow sycamore syrup tadpole tambourine tangerine tapir thistle thyme toboggan toucan trellis trout
truffle tundra turnip tweed umber vanilla velvet vinegar violet vulture waffle walnut warbler waterfall
weasel whisk wicker wildcat wombat woodpecker yak yeast yew yogurt zinnia
abbey acre aisle altar amulet annex anvil aqueduct arbor archive armory atlas attire auction avalanche
awning bailiff ballad bandit banquet barge baron barracks bastion beehive belfry berth bistro blacksmith
blizzard boardwalk bonfire boutique brewery brigade brook buffet bulletin bunker cabaret cadet cafe
cameo campfire canopy canteen cape carnival carousel cartoon cascade cashier cathedral cavern census
chamber chandelier chapter chateau chef chorus circus citadel clinic cloister clubhouse cobblestone
cocoon colonel column comedy concert convoy cottage courtyard crater creed crossing crusade cuisine
curator dairy dealer debut decree depot derby diner diploma district dock domain dormitory drawbridge
dungeon dynasty easement embassy emperor empire encore engineer envoy epic errand estuary exhibit fable
fairground farmhouse ferryman festival fiesta flagship foothill footpath forge foundry freeway frontier
gallery garrison gazebo glade granary greenhouse grotto guild gymnasium hamlet hangar harvest haven
headland heirloom herald hermit highway hillside homestead horizon hostel hotline inlet inn jester jetty
journal jubilee jungle kennel kingdom knight laboratory landmark lane lecture legend lighthouse lobby
lodge lookout lottery lounge magistrate manor mansion marina marquee masonry meadowland mechanic merchant
mill minister minstrel moat monastery monarch monument mosaic motel mural musician navigator nomad
novel observatory opera orator outpost paddle pageant palisade pantry parlor parish pasture patrol
pavilion peasant pharmacy pilgrim plaza porter prairie precinct prophet province pub pulpit quarry
quay rampart ranger realm rectory refuge regatta relic reservoir retreat ritual riverboat rodeo rotunda
saga salon sanctuary scholar schooner scribe sculptor sentinel sermon settler shepherd shrine siege
skyline slipway smithy soldier sonnet spire squadron stadium steward studio summit surveyor tavern
temple terrace theater thicket tollgate tournament township trader tramway tribune tributary trough
turret tutor vault veranda viaduct vicar villa vineyard voyage warden warehouse watchtower weaver wharf
wilderness windmill workshop
`;

export const CWE_WORDS: readonly string[] = Array.from(
  new Set(RAW.split(/\s+/).filter((w) => /^[a-z]+$/.test(w))),
);
