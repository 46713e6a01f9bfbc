"""Demo articles for `natomedia seed`: the Oslo article of the product brief, and others
written for this project to show pagination, tags and search. Not real NATO copy."""

from __future__ import annotations

from typing import Any

OSLO_SLUG = "nato-russia-council-oslo-2007"

OSLO_ARTICLE: dict[str, Any] = {
    "slug": OSLO_SLUG,
    "title": "NATO-Russia Council discusses missile defence and the CFE Treaty in Oslo",
    "summary": (
        "Practical NATO-Russia cooperation, missile defence, and the CFE treaty were the three "
        "main issues discussed by Foreign Ministers at a meeting of the NATO-Russia Council in "
        "Oslo, 26 April."
    ),
    "body": (
        "<p>Practical NATO-Russia cooperation, missile defence, and the CFE treaty were the three "
        "main issues discussed by Foreign Ministers at a meeting of the NATO-Russia Council in "
        "Oslo, 26 April.</p>"
        "<p>First, Ministers welcomed the practical cooperation in the NATO-Russia relationship, "
        "noting in particular joint work on countering the Afghan narcotics challenge, Operation "
        "Active Endeavour, and theatre missile defence.</p>"
        "<p>Second, they discussed strategic missile defence, specifically US discussions to base "
        "missile facilities in Europe. It was clear that, while the 26 NATO Allies believe that "
        "these US plans can in no way upset the strategic balance in Europe, Russia has "
        "fundamental concerns.</p>"
        "<p>There was a consensus on the need to take this discussion forward in the NATO-Russia "
        "Council in the future, focusing in particular on threat assessment.</p>"
        "<h2>Profound concerns</h2>"
        "<p>Finally, Allies expressed profound concerns and disquiet over President Putin's "
        "announcement, earlier in the day, that Russia would unilaterally suspend its adhesion to "
        "the Treaty on Conventional Armed Forces in Europe (CFE).</p>"
        "<p>NATO Allies have always complied fully with the existing and adapted CFE treaties, and "
        "hope for the ratification of the adapted Treaty as soon as Russia fully meets its "
        "Istanbul commitments to withdraw personnel and equipment from Georgia and Moldova.</p>"
        "<p>Again, this issue will be further discussed in the NATO-Russia Council.</p>"
        "<p>The NATO-Russia Council meeting is part of a two-day informal meeting of NATO Foreign "
        "Ministers in Oslo, 26-27 April.</p>"
    ),
    "published_at": "2007-04-26T17:00:00Z",
    "location": "Oslo, Norway",
    "language": "en",
    "tags": [
        "nato-russia-council",
        "missile-defence",
        "cfe-treaty",
        "arms-control",
        "foreign-ministers",
    ],
}


def _article(
    slug: str,
    title: str,
    summary: str,
    paragraphs: list[str],
    published_at: str,
    location: str,
    tags: list[str],
) -> dict[str, Any]:
    return {
        "slug": slug,
        "title": title,
        "summary": summary,
        "body": "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs),
        "published_at": published_at,
        "location": location,
        "language": "en",
        "tags": tags,
    }


OTHER_ARTICLES: list[dict[str, Any]] = [
    _article(
        "steadfast-jazz-exercise-concludes-2013",
        "Exercise Steadfast Jazz concludes in Poland and the Baltic States",
        "Some 6,000 personnel from Allied and partner nations completed a live and command-post "
        "exercise testing the NATO Response Force.",
        [
            "The exercise brought together land, air, maritime and special operations forces to "
            "rehearse the deployment of a rapid reaction headquarters.",
            "Commanders said the training confirmed that the NATO Response Force can plan and "
            "conduct a demanding collective defence operation at short notice.",
            "Observers from partner countries followed the command-post phase in Latvia.",
        ],
        "2013-11-09T12:00:00Z",
        "Drawsko Pomorskie, Poland",
        ["exercises", "nato-response-force", "collective-defence"],
    ),
    _article(
        "bucharest-summit-opens-2008",
        "Heads of State and Government open the Bucharest Summit",
        "Allied leaders met in Bucharest to discuss operations in Afghanistan, enlargement and "
        "new security challenges such as energy security and cyber defence.",
        [
            "The summit agenda focused on the Alliance's commitment to Afghanistan and on the "
            "applications of countries seeking membership.",
            "Leaders also discussed how the Alliance can contribute to energy security and to the "
            "protection of information networks.",
            "Partner nations contributing troops to operations joined a dedicated session on the "
            "second day.",
        ],
        "2008-04-02T09:00:00Z",
        "Bucharest, Romania",
        ["summits", "enlargement", "afghanistan", "cyber-defence"],
    ),
    _article(
        "lisbon-summit-strategic-concept-2010",
        "Lisbon Summit adopts a new Strategic Concept",
        "Allied leaders agreed a new Strategic Concept setting out the Alliance's core tasks: "
        "collective defence, crisis management and cooperative security.",
        [
            "The document, the first new Strategic Concept in over a decade, commits Allies to "
            "modern defences against new threats.",
            "Leaders decided to develop a territorial capability to protect populations in Europe "
            "and invited Russia to cooperate; missile defence became a core element of "
            "collective defence.",
            "A transition strategy for handing over security responsibility in Afghanistan was "
            "also agreed.",
        ],
        "2010-11-20T16:00:00Z",
        "Lisbon, Portugal",
        ["summits", "strategic-concept", "collective-defence"],
    ),
    _article(
        "science-for-peace-water-security-2009",
        "Science for Peace project brings clean water monitoring to Central Asia",
        "Scientists from Allied and partner countries completed a project that installed "
        "water-quality sensors along transboundary rivers.",
        [
            "The project, funded under the Science for Peace and Security Programme, trained local "
            "engineers to operate and maintain the monitoring stations.",
            "Data from the sensors is shared among the participating countries to give early "
            "warning of pollution.",
            "Researchers said the network has already helped identify two contamination sources.",
        ],
        "2009-06-15T10:00:00Z",
        "Tashkent, Uzbekistan",
        ["science", "partnerships", "environmental-security"],
    ),
    _article(
        "partnership-for-peace-anniversary-2004",
        "Partnership for Peace marks its tenth anniversary",
        "Representatives of Allied and partner nations marked ten years of the Partnership for "
        "Peace programme, which has built practical cooperation across the Euro-Atlantic area.",
        [
            "Since its launch the programme has helped partners reform their defence "
            "institutions and train forces to work alongside Allied troops.",
            "Several former partners are now members of the Alliance.",
            "Speakers stressed that partnership remains open to all countries that share the "
            "programme's values.",
        ],
        "2004-01-12T11:00:00Z",
        "Brussels, Belgium",
        ["partnerships", "partnership-for-peace"],
    ),
    _article(
        "cyber-defence-centre-tallinn-2008",
        "Cooperative Cyber Defence Centre of Excellence accredited in Tallinn",
        "A centre of excellence dedicated to cyber defence research, training and doctrine was "
        "formally accredited in Estonia.",
        [
            "The centre brings together experts from sponsoring nations to study legal, technical "
            "and strategic aspects of cyber defence.",
            "It will support the Alliance with analysis, exercises and lessons learned.",
        ],
        "2008-10-28T08:30:00Z",
        "Tallinn, Estonia",
        ["cyber-defence", "centres-of-excellence"],
    ),
    _article(
        "maritime-counter-piracy-gulf-of-aden-2009",
        "Allied ships escort merchant vessels off the Horn of Africa",
        "A standing maritime group began counter-piracy patrols in the Gulf of Aden to deter "
        "attacks on merchant shipping.",
        [
            "The ships operate alongside other international naval forces in the region and "
            "share information on suspicious activity.",
            "Commanders said the presence of warships has already prevented several attempted "
            "hijackings.",
        ],
        "2009-03-24T13:00:00Z",
        "Gulf of Aden",
        ["maritime", "counter-piracy", "operations"],
    ),
    _article(
        "arms-control-conference-2008",
        "Annual conference reviews arms control and disarmament",
        "Experts from Allied and partner countries reviewed progress on small arms control, "
        "conventional arms agreements and non-proliferation.",
        [
            "Participants discussed the state of conventional arms control in Europe, including "
            "the future of the CFE regime after its suspension by Russia.",
            "Sessions also covered the destruction of surplus ammunition and landmines in partner "
            "countries.",
        ],
        "2008-06-10T09:00:00Z",
        "Brussels, Belgium",
        ["arms-control", "non-proliferation"],
    ),
    _article(
        "trident-juncture-2018",
        "Trident Juncture tests Allied reinforcement in Norway",
        "Around 50,000 personnel took part in one of the largest Allied exercises in recent "
        "years, practising the reinforcement of an Ally under attack.",
        [
            "Troops, ships and aircraft from all Allies and two partner countries deployed to "
            "central and eastern Norway and the surrounding seas.",
            "The exercise tested logistics, cold-weather operations and host-nation support.",
            "Civilian authorities took part to rehearse cooperation in a crisis.",
        ],
        "2018-11-07T15:00:00Z",
        "Trondheim, Norway",
        ["exercises", "collective-defence", "logistics"],
    ),
    _article(
        "women-peace-security-action-plan-2014",
        "Allies update the action plan on women, peace and security",
        "An updated action plan sets out how the Alliance integrates gender perspectives into "
        "operations, training and partnerships.",
        [
            "The plan was developed with partner countries contributing to Allied operations.",
            "It includes measures to increase the participation of women in defence and to protect "
            "civilians from sexual violence in conflict.",
        ],
        "2014-06-03T10:00:00Z",
        "Brussels, Belgium",
        ["women-peace-and-security", "partnerships"],
    ),
    _article(
        "wales-summit-readiness-action-plan-2014",
        "Wales Summit agrees a Readiness Action Plan",
        "Allied leaders agreed to strengthen collective defence with a very high readiness force "
        "and a continuous presence in the eastern part of the Alliance.",
        [
            "The plan includes new command and control elements on the territory of eastern "
            "Allies and more exercises.",
            "Leaders also pledged to reverse the decline in defence spending within a decade.",
        ],
        "2014-09-05T14:00:00Z",
        "Newport, United Kingdom",
        ["summits", "collective-defence", "defence-spending"],
    ),
    _article(
        "air-policing-baltic-rotation-2012",
        "New rotation takes over Baltic air policing",
        "Fighter aircraft from an Allied air force took over the air policing mission that "
        "protects the airspace of Estonia, Latvia and Lithuania.",
        [
            "The mission has run without interruption since the Baltic States joined the Alliance.",
            "Aircraft on quick reaction alert can be airborne within minutes to identify unknown "
            "aircraft approaching Allied airspace.",
        ],
        "2012-05-02T08:00:00Z",
        "Šiauliai, Lithuania",
        ["air-policing", "collective-defence"],
    ),
    _article(
        "disaster-response-exercise-2016",
        "Civil emergency exercise rehearses response to floods",
        "Rescue teams from twenty countries practised a coordinated response to large-scale "
        "flooding, coordinated by the Euro-Atlantic Disaster Response Coordination Centre.",
        [
            "Teams worked on search and rescue, water purification and the evacuation of "
            "hospitals.",
            "The exercise tested how requests for assistance are matched with offers from Allied "
            "and partner nations.",
        ],
        "2016-10-01T09:30:00Z",
        "Podgorica, Montenegro",
        ["civil-emergency-planning", "exercises", "partnerships"],
    ),
    _article(
        "science-for-peace-explosive-detection-2017",
        "Researchers test stand-off detection of explosives",
        "A multinational team demonstrated sensors that can detect explosives from a safe "
        "distance in a busy public space.",
        [
            "The project, supported by the Science for Peace and Security Programme, combines "
            "video analytics with radar and laser sensors.",
            "Results will be shared with security services in participating countries.",
        ],
        "2017-04-11T11:00:00Z",
        "Rome, Italy",
        ["science", "counter-terrorism"],
    ),
    _article(
        "mediterranean-dialogue-meeting-2006",
        "Mediterranean Dialogue partners meet in Rabat",
        "Officials from Allied countries and Mediterranean Dialogue partners discussed practical "
        "cooperation on border security and defence reform.",
        [
            "Participants reviewed the growing menu of training courses and exercises open to "
            "Dialogue countries.",
            "They agreed to deepen cooperation on maritime security in the Mediterranean.",
        ],
        "2006-05-17T10:00:00Z",
        "Rabat, Morocco",
        ["partnerships", "mediterranean-dialogue", "maritime"],
    ),
    _article(
        "kosovo-force-handover-2011",
        "Kosovo Force changes command",
        "A new commander took over the Kosovo Force at a ceremony attended by local and "
        "international officials.",
        [
            "The force continues to contribute to a safe and secure environment and freedom of "
            "movement for all communities.",
            "The outgoing commander praised the cooperation of the Kosovo Police and the European "
            "Union rule-of-law mission.",
        ],
        "2011-09-09T10:00:00Z",
        "Pristina",
        ["operations", "kosovo", "kfor"],
    ),
    _article(
        "defence-ministers-capability-targets-2015",
        "Defence Ministers agree new capability targets",
        "Defence Ministers approved capability targets for each Ally and discussed the "
        "implementation of the Readiness Action Plan.",
        [
            "The targets cover areas such as air-to-air refuelling, intelligence and "
            "reconnaissance, and deployable headquarters.",
            "Ministers also reviewed the training mission in Afghanistan.",
        ],
        "2015-06-25T17:00:00Z",
        "Brussels, Belgium",
        ["defence-ministers", "capabilities"],
    ),
    _article(
        "afghan-security-forces-training-2012",
        "Training mission graduates new Afghan instructors",
        "Hundreds of Afghan soldiers and police officers graduated as instructors, taking over "
        "training responsibilities from Allied trainers.",
        [
            "Handing instruction to Afghan trainers is a key step in the transition of security "
            "responsibility.",
            "Courses covered literacy, leadership, logistics and marksmanship.",
        ],
        "2012-02-20T07:00:00Z",
        "Kabul, Afghanistan",
        ["afghanistan", "training", "operations"],
    ),
    _article(
        "energy-security-centre-2012",
        "Energy security centre of excellence opens in Vilnius",
        "A new centre of excellence will help Allies understand energy security risks, from "
        "protecting critical infrastructure to fuel efficiency in operations.",
        [
            "Experts at the centre will support exercises, training and research.",
            "The centre's first projects study how deployed forces can reduce their fuel needs.",
        ],
        "2012-07-10T12:00:00Z",
        "Vilnius, Lithuania",
        ["energy-security", "centres-of-excellence"],
    ),
    _article(
        "enhanced-forward-presence-battlegroups-2017",
        "Multinational battlegroups complete deployment in the Baltic region",
        "Four multinational battlegroups are now in place in Estonia, Latvia, Lithuania and "
        "Poland, led by framework nations.",
        [
            "The battlegroups are defensive and proportionate, and demonstrate the solidarity of "
            "Allies.",
            "Soldiers train with host-nation forces throughout their rotation.",
        ],
        "2017-08-28T09:00:00Z",
        "Orzysz, Poland",
        ["collective-defence", "enhanced-forward-presence"],
    ),
    _article(
        "ukraine-partnership-commission-2019",
        "NATO-Ukraine Commission reviews reform programme",
        "Ambassadors discussed Ukraine's defence and security sector reforms and the support "
        "Allies provide through trust funds and advisory missions.",
        [
            "Trust funds support areas such as medical rehabilitation, logistics and command "
            "and control.",
            "Allies welcomed progress and encouraged continued reform.",
        ],
        "2019-10-31T15:00:00Z",
        "Kyiv, Ukraine",
        ["partnerships", "ukraine", "defence-reform"],
    ),
    _article(
        "innovation-accelerator-launch-2023",
        "Defence innovation accelerator selects first challenge programmes",
        "A new accelerator selected start-ups and researchers to work on energy resilience, "
        "secure information sharing and sensing.",
        [
            "Selected teams receive funding and access to test centres across the Alliance.",
            "The accelerator connects Allied defence planners with civilian innovators.",
        ],
        "2023-06-20T10:00:00Z",
        "Brussels, Belgium",
        ["innovation", "science", "emerging-technologies"],
    ),
    _article(
        "dynamic-mongoose-submarine-exercise-2021",
        "Dynamic Mongoose hones anti-submarine warfare skills",
        "Submarines, surface ships and maritime patrol aircraft trained together in the North "
        "Atlantic to locate and track submarines.",
        [
            "Crews practised coordinated searches in challenging sea conditions.",
            "The exercise improves the ability of Allies to protect sea lines of communication.",
        ],
        "2021-07-02T08:00:00Z",
        "North Atlantic",
        ["exercises", "maritime", "anti-submarine-warfare"],
    ),
    _article(
        "climate-security-action-plan-2021",
        "Allies adopt a climate change and security action plan",
        "An action plan sets out how the Alliance will assess the impact of climate change on "
        "security and adapt its forces and infrastructure.",
        [
            "Allies will include climate considerations in defence planning, exercises and "
            "capability development.",
            "The plan also aims to reduce greenhouse gas emissions from military activities.",
        ],
        "2021-06-14T16:00:00Z",
        "Brussels, Belgium",
        ["climate-security", "summits"],
    ),
    _article(
        "vilnius-summit-2023",
        "Vilnius Summit strengthens deterrence and defence",
        "Allied leaders agreed new regional defence plans and a commitment to invest at least "
        "two per cent of GDP in defence.",
        [
            "The plans describe how the Alliance would defend every Ally, region by region.",
            "Leaders also agreed a defence production action plan to increase output of "
            "ammunition and equipment.",
        ],
        "2023-07-12T18:00:00Z",
        "Vilnius, Lithuania",
        ["summits", "collective-defence", "defence-spending"],
    ),
    _article(
        "science-for-peace-demining-2019",
        "Underwater demining project clears historic munitions",
        "A Science for Peace and Security project developed autonomous vehicles that locate and "
        "map unexploded ordnance on the seabed.",
        [
            "The vehicles combine sonar and magnetic sensors and were tested in coastal waters.",
            "Participating navies will use the results to plan clearance operations.",
        ],
        "2019-05-08T10:00:00Z",
        "Split, Croatia",
        ["science", "demining", "maritime"],
    ),
]

DEMO_ARTICLES: list[dict[str, Any]] = [OSLO_ARTICLE, *OTHER_ARTICLES]
