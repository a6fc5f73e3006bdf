# ruff: noqa: E501  (hand-written corpus sentences are kept whole, one per line)
"""Compose corpus mails from hand-written parts: ``python tests/corpus/language/compose.py``.

Every sentence, log block and signature used here is hand-written (the blocks are in
``blocks.txt``); this script only combines them, with a fixed seed, into realistic
mails: a greeting, some context, a problem matched to the log that shows it, a
question, a closing and a signature. It writes ``<lang>.composed.txt`` beside the
hand-written ``<lang>.txt`` files. The committed output is the evidence; a test checks
it is what this script produces.
"""

from __future__ import annotations

import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

# ---------------------------------------------------------------------------- English

EN_GREETINGS = [
    "Hi,",
    "Hello,",
    "Hello support team,",
    "Dear IREX support,",
    "Hi team,",
    "Good morning,",
    "Hi Anna,",
    "Dear Sir or Madam,",
    "Hello IREX team,",
    "Hey,",
    "",
    "Good afternoon,",
    "Hi support,",
    "Dear support team,",
]

EN_CONTEXT = [
    "",
    "",
    "We run IREX on RHEL 8.9 with PostgreSQL 15 on a separate database server.",
    "This is our production system with about 200 cameras on two sites.",
    "Our setup is one server and two recorder nodes on VMware, Windows Server 2022.",
    "The site is a hospital, so this is quite urgent for us.",
    "We are a system integrator and open this ticket on behalf of our customer, Stadtwerke Neustadt.",
    "Environment: docker compose on Ubuntu 22.04, single host, 48 cameras.",
    "we have the IREX since 3 years and never had this problem before.",
    "I am new in the team, so sorry if this was already asked.",
    "Our customer is the municipality of Kraków (Urząd Miasta Krakowa), 320 cameras.",
    "The installation is at our logistics centre in Venlo, NL.",
]

EN_SCENARIOS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "startup": (
        [
            "After the upgrade to 7.4.2 the server does not start any more.",
            "Since this morning's upgrade the IREX service stops right after starting.",
            "We upgraded our test system to 7.4.2 and now the server fails on startup.",
            "after update the server is not starting, it stops after some seconds.",
        ],
        ["java-bind", "systemctl", "syslog", "docker-logs", "upgrade-cli"],
        [
            "What could be the reason?",
            "Could you tell us what to check next?",
            "We rolled back for now. Is there a known fix?",
            "Please advise how to proceed, the maintenance window ends at 06:00.",
        ],
    ),
    "database": (
        [
            "The server cannot connect to the database since our DBA changed the password policy.",
            "Since last night the console shows 'Database unavailable' every few minutes.",
            "After moving the database to a new cluster, the server does not come up.",
        ],
        ["java-db", "psql", "properties"],
        [
            "Where else is the database password stored?",
            "Is there anything we need to run on the new database first?",
            "Can you help us find the cause?",
        ],
    ),
    "memory": (
        [
            "The analytics workers crash every night during the re-indexing job.",
            "The worker process restarts several times per hour since 7.4.1.",
            "Memory usage of the server grows until it crashes, about every two days.",
        ],
        ["java-oom", "gc-log", "nvidia-smi"],
        [
            "Should we increase the heap, or is this a memory leak?",
            "Is this a known issue in 7.4.1?",
            "What sizing do you recommend for 64 channels?",
        ],
    ),
    "ldap": (
        [
            "LDAP login is broken for all users since the service account password was rotated.",
            "Users from the second AD domain cannot log in any more.",
            "SSO works but LDAP login fails with 'invalid credentials' for every user.",
        ],
        ["java-ldap", "properties"],
        [
            "Is the bind password cached somewhere?",
            "The test button in the console succeeds. What is different for real logins?",
            "Could you check the log and tell us what is wrong?",
        ],
    ),
    "license": (
        [
            "The license shows as expired although our subscription is valid until 2025.",
            "After the renewal the server still runs in restricted mode.",
            "All analytics were disabled at midnight, the server says the license expired.",
        ],
        ["java-license", "json-api", "irexctl"],
        [
            "Can you send us a renewed license file?",
            "Do we need to upload the new license file somewhere?",
            "Please fix this quickly, production is affected.",
        ],
    ),
    "upgrade": (
        [
            "The schema migration fails during the upgrade from 7.3.9 to 7.4.2.",
            "The upgrade stops in the middle and rolls back.",
            "The installer fails at the end and rolls everything back.",
        ],
        ["python-tb", "upgrade-cli", "msi-log", "yum", "docker-logs"],
        [
            "Is it safe to fix the database by hand and run the upgrade again?",
            "What are the prerequisites we are missing?",
            "The full upgrade log is attached.",
        ],
    ),
    "camera": (
        [
            "One camera shows 'No signal' in the console, the others are fine.",
            "Several Hikvision cameras lost their stream after we changed their passwords.",
            "Camera 12 keeps dropping frames since we switched it to H.265.",
        ],
        ["python-chained", "ffprobe", "glog"],
        [
            "VLC plays the same stream without problems. Which authentication does the worker use?",
            "Is H.265 supported on this worker version?",
            "Is this camera model supported?",
        ],
    ),
    "tls": (
        [
            "After replacing the TLS certificate the mobile app and the Windows client cannot connect.",
            "The sync client fails with a certificate error since we moved to our own CA.",
            "Browsers work but API clients reject the new certificate.",
        ],
        ["dotnet", "openssl", "server-xml", "nginx", "curl"],
        [
            "Where do we put the full certificate chain?",
            "Which file does the client use to trust our CA?",
            "Do we need to restart anything after changing the keystore?",
        ],
    ),
    "storage": (
        [
            "Recording stopped on the recorder node because the disk is full.",
            "Retention does not seem to delete old recordings any more.",
            "The storage usage grows every day although retention is set to 30 days.",
        ],
        ["df", "ini", "properties"],
        [
            "Can we delete the oldest folders by hand?",
            "Where can we see the log of the retention job?",
            "Which setting did we get wrong?",
        ],
    ),
    "kubernetes": (
        [
            "The server pod never becomes ready after deploying the new chart version.",
            "After the helm upgrade the server container is in CrashLoopBackOff.",
            "Our docker deployment is stuck in a restart loop after pulling the new image.",
        ],
        ["kubectl", "helm-values", "docker-ps", "compose-yaml", "docker-logs"],
        [
            "Is there a debug flag in the chart?",
            "Is our values file still valid for 7.4?",
            "Do we need to run the migrations manually in a container setup?",
        ],
    ),
    "windows": (
        [
            "The IREX Server service on Windows does not start after the monthly Windows updates.",
            "Since the cumulative update the service stops after a few seconds.",
            "Our Windows server rebooted for patches and the IREX service did not come back.",
        ],
        ["powershell", "eventlog", "dotnet-nullref", "msi-log"],
        [
            "Repairing the installation did not help. What else can we try?",
            "Do you know of any problem with the latest Windows updates?",
            "Please have a look, the event log is below.",
        ],
    ),
    "health": (
        [
            "The load balancer marks both nodes as unhealthy.",
            "The health endpoint returns 503 although the console seems to work.",
            "irexctl status shows the server as degraded.",
        ],
        ["curl", "irexctl", "access-log", "ntp"],
        [
            "How do we find out which component is down?",
            "Is this related to the broker?",
            "What does 'degraded' mean exactly?",
        ],
    ),
}

EN_EXTRA = [
    "",
    "",
    "We already restarted the server twice, no change.",
    "Nothing was changed on our side before this started.",
    "A log bundle from the console is attached.",
    "We can give you a remote session if needed.",
    "The problem started after the reboot on Sunday.",
    "We tried the steps from the knowledge base article about this error, without success.",
    "it is urgent because the customer has an audit tomorrow.",
]

EN_SIGNATURES = [
    "Thanks,\nTom",
    "Best regards,\nMarkus Weber\nIT Infrastruktur\nStadtwerke Neustadt GmbH\nBahnhofstraße 12, 67433 Neustadt an der Weinstraße",
    "Kind regards\nJulien Moreau\nIngénieur systèmes\nGroupe Hospitalier du Val de Loire\n\nCe message et toutes les pièces jointes sont confidentiels et établis à l'intention exclusive de ses destinataires. Toute utilisation ou diffusion non autorisée est interdite.",
    "Regards,\nAgnieszka Wiśniewska\nSpecjalista ds. systemów bezpieczeństwa\nPort Lotniczy Wrocław S.A.\nul. Graniczna 190, 54-530 Wrocław",
    "Mit freundlichen Grüßen / Best regards\n\nThomas Schäfer\nLeiter IT-Betrieb\nMüller & Söhne Logistik GmbH\nSitz der Gesellschaft: Mannheim, Amtsgericht Mannheim HRB 712345\nGeschäftsführer: Dr. Klaus Müller",
    "Cheers,\nLiam O'Connor",
    "Best regards,\nKenji Watanabe\n株式会社山田製作所 情報システム部\n〒460-0008 愛知県名古屋市中区栄3-15-33",
    "Met vriendelijke groet,\n\nPieter van den Berg\nApplicatiebeheer\nGemeente Zwolle",
    "Envoyé de mon iPhone",
    "Thanks in advance,\nSophie Lambert\nDSI - Ville de Grenoble\n11 boulevard Jean Pain, 38000 Grenoble",
    "Regards\nMatteo Rossi\n\nQuesto messaggio e i suoi allegati sono indirizzati esclusivamente alle persone indicate e possono contenere informazioni riservate. Se avete ricevuto questo messaggio per errore, vi preghiamo di darne comunicazione al mittente.",
    "Saludos,\nJavier Martínez\nDepartamento de Sistemas\n\nAVISO LEGAL: Este mensaje va dirigido exclusivamente a su destinatario y puede contener información confidencial.",
    "Thank you,\nDmitry Ivanov (Дмитрий Иванов)",
    "BR\nJan Nowak",
    "Von meinem iPhone gesendet",
    "Many thanks\nWei Zhang (张伟)\nIT Operations, Shenzhen",
    "Best,\nIngrid Sørensen\nDriftsansvarlig, Aarhus Kommune",
    "",
    "Regards,\nFrançois-Xavier Lemaître\nResponsable sécurité\nIREX Intégration SAS au capital de 50 000 € - RCS Lyon 812 345 678",
    "Pozdrawiam,\nMarek",
]

# ---------------------------------------------------------------------- other languages

# Per language: greetings, (problem, blocks) pairs, questions, signatures. Hand-written.
FOREIGN: dict[str, dict[str, list[str] | list[tuple[str, list[str]]]]] = {
    "fr": {
        "greetings": ["Bonjour,", "Bonjour à tous,", "Madame, Monsieur,", "Salut,"],
        "problems": [
            (
                "Depuis la mise à jour en 7.4.2, le serveur s'arrête quelques secondes après le démarrage.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "Les workers d'analytics plantent toutes les nuits pendant la réindexation.",
                ["java-oom", "gc-log"],
            ),
            (
                "La connexion LDAP ne fonctionne plus pour aucun utilisateur depuis le changement de mot de passe du compte de service.",
                ["java-ldap"],
            ),
            ("L'enregistrement s'est arrêté sur le nœud recorder car le disque est plein.", ["df"]),
            ("La migration du schéma échoue pendant l'upgrade.", ["python-tb", "upgrade-cli"]),
            (
                "Le pod du serveur ne passe jamais en ready après le déploiement du nouveau chart.",
                ["kubectl", "helm-values"],
            ),
        ],
        "questions": [
            "Pouvez-vous nous aider rapidement ? C'est notre environnement de production.",
            "Que devons-nous vérifier ?",
            "Est-ce un problème connu ? Merci de nous rappeler.",
            "Nous avons déjà redémarré deux fois, sans effet.",
        ],
        "signatures": [
            "Cordialement,\nNathalie Girard",
            "Merci d'avance,\nPhilippe",
            "Bien à vous,\nClaire Fontaine\nDSI - Ville de Grenoble",
        ],
    },
    "de": {
        "greetings": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo zusammen,"],
        "problems": [
            (
                "Seit dem Update auf 7.4.2 beendet sich der Server wenige Sekunden nach dem Start.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "Die Analytics-Worker stürzen jede Nacht während der Neuindizierung ab.",
                ["java-oom", "gc-log"],
            ),
            (
                "Der LDAP-Login funktioniert seit der Passwortänderung des Service-Accounts für niemanden mehr.",
                ["java-ldap"],
            ),
            (
                "Die Aufzeichnung auf dem Recorder ist stehen geblieben, weil die Platte voll ist.",
                ["df"],
            ),
            ("Die Schemamigration schlägt beim Upgrade fehl.", ["python-tb", "upgrade-cli"]),
            (
                "Der Dienst startet unter Windows nach den Patches nicht mehr.",
                ["powershell", "eventlog"],
            ),
        ],
        "questions": [
            "Könnt ihr uns schnell helfen? Es handelt sich um das Produktivsystem.",
            "Was sollen wir prüfen?",
            "Ist das ein bekanntes Problem? Bitte um Rückruf.",
            "Wir haben schon zweimal neu gestartet, ohne Erfolg.",
        ],
        "signatures": [
            "Viele Grüße\nJens",
            "Mit freundlichen Grüßen\nKerstin Hahn\nIT-Service",
            "Danke und Gruß\nMatthias Roth",
        ],
    },
    "es": {
        "greetings": ["Hola,", "Buenos días,", "Estimados:", "Buenas tardes,"],
        "problems": [
            (
                "Desde la actualización a la 7.4.2, el servidor se para a los pocos segundos de arrancar.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "Los workers de analítica se caen todas las noches durante la reindexación.",
                ["java-oom", "gc-log"],
            ),
            (
                "El login por LDAP no funciona para ningún usuario desde que se cambió la contraseña de la cuenta de servicio.",
                ["java-ldap"],
            ),
            ("La grabación se ha parado en el nodo grabador porque el disco está lleno.", ["df"]),
            ("La migración del esquema falla durante el upgrade.", ["python-tb", "upgrade-cli"]),
            (
                "El pod del servidor nunca llega a estar ready después de desplegar el nuevo chart.",
                ["kubectl", "helm-values"],
            ),
        ],
        "questions": [
            "¿Nos pueden ayudar con urgencia? Es el entorno de producción.",
            "¿Qué deberíamos revisar?",
            "¿Es un problema conocido? Por favor, llámennos.",
            "Ya hemos reiniciado dos veces y sigue igual.",
        ],
        "signatures": [
            "Saludos,\nCarlos Navarro",
            "Un saludo,\nRaquel",
            "Atentamente,\nPablo Sánchez\nSistemas",
        ],
    },
    "it": {
        "greetings": ["Buongiorno,", "Ciao,", "Gentile supporto,", "Salve,"],
        "problems": [
            (
                "Dall'aggiornamento alla 7.4.2 il server si ferma pochi secondi dopo l'avvio.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "I worker di analytics vanno in crash ogni notte durante la reindicizzazione.",
                ["java-oom", "gc-log"],
            ),
            (
                "Il login LDAP non funziona per nessun utente da quando è stata cambiata la password dell'account di servizio.",
                ["java-ldap"],
            ),
            ("La registrazione si è fermata sul nodo recorder perché il disco è pieno.", ["df"]),
            (
                "La migrazione dello schema fallisce durante l'upgrade.",
                ["python-tb", "upgrade-cli"],
            ),
            (
                "Il servizio non parte più su Windows dopo gli aggiornamenti mensili.",
                ["powershell", "eventlog"],
            ),
        ],
        "questions": [
            "Potete aiutarci con urgenza? È l'ambiente di produzione.",
            "Cosa dobbiamo controllare?",
            "È un problema noto? Per favore richiamateci.",
            "Abbiamo già riavviato due volte, senza risultato.",
        ],
        "signatures": [
            "Cordiali saluti,\nDavide Colombo",
            "Grazie,\nGiulia",
            "Saluti,\nRoberto Galli\nUfficio IT",
        ],
    },
    "pt": {
        "greetings": ["Olá,", "Bom dia,", "Prezados,", "Boa tarde,"],
        "problems": [
            (
                "Desde a atualização para a 7.4.2, o servidor para poucos segundos depois de iniciar.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "Os workers de análise caem todas as noites durante a reindexação.",
                ["java-oom", "gc-log"],
            ),
            (
                "O login LDAP não funciona para nenhum utilizador desde que a palavra-passe da conta de serviço foi alterada.",
                ["java-ldap"],
            ),
            ("A gravação parou no nó de gravação porque o disco está cheio.", ["df"]),
            ("A migração do esquema falha durante o upgrade.", ["python-tb", "upgrade-cli"]),
            (
                "O pod do servidor nunca fica ready depois de instalar o novo chart.",
                ["kubectl", "helm-values"],
            ),
        ],
        "questions": [
            "Podem ajudar-nos com urgência? É o ambiente de produção.",
            "O que devemos verificar?",
            "É um problema conhecido? Por favor, liguem-nos.",
            "Já reiniciámos duas vezes e continua igual.",
        ],
        "signatures": [
            "Cumprimentos,\nAna Rodrigues",
            "Atenciosamente,\nRafael Souza",
            "Obrigado,\nMarcelo",
        ],
    },
    "nl": {
        "greetings": ["Hallo,", "Goedemorgen,", "Beste support,", "Hoi,"],
        "problems": [
            (
                "Sinds de update naar 7.4.2 stopt de server een paar seconden na het starten.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "De analytics-workers crashen elke nacht tijdens het herindexeren.",
                ["java-oom", "gc-log"],
            ),
            (
                "Inloggen via LDAP werkt voor niemand meer sinds het wachtwoord van het serviceaccount is gewijzigd.",
                ["java-ldap"],
            ),
            ("De opname op de recorder is gestopt omdat de schijf vol is.", ["df"]),
            ("De schemamigratie mislukt tijdens de upgrade.", ["python-tb", "upgrade-cli"]),
            (
                "De service start op Windows niet meer na de maandelijkse updates.",
                ["powershell", "eventlog"],
            ),
        ],
        "questions": [
            "Kunnen jullie ons snel helpen? Het gaat om de productieomgeving.",
            "Wat moeten we controleren?",
            "Is dit een bekend probleem? Graag terugbellen.",
            "We hebben al twee keer herstart, zonder resultaat.",
        ],
        "signatures": [
            "Met vriendelijke groet,\nBram Visser",
            "Groeten,\nDaan",
            "Alvast bedankt,\nLotte Smit\nICT-beheer",
        ],
    },
    "pl": {
        "greetings": ["Dzień dobry,", "Witam,", "Szanowni Państwo,", "Cześć,"],
        "problems": [
            (
                "Od aktualizacji do 7.4.2 serwer zatrzymuje się kilka sekund po uruchomieniu.",
                ["java-bind", "systemctl", "syslog"],
            ),
            ("Workery analityki padają każdej nocy podczas reindeksacji.", ["java-oom", "gc-log"]),
            (
                "Logowanie przez LDAP nie działa dla nikogo od zmiany hasła konta serwisowego.",
                ["java-ldap"],
            ),
            ("Nagrywanie na rejestratorze zatrzymało się, bo dysk jest pełny.", ["df"]),
            (
                "Migracja schematu bazy kończy się błędem podczas upgrade'u.",
                ["python-tb", "upgrade-cli"],
            ),
            (
                "Pod serwera nigdy nie osiąga stanu ready po wdrożeniu nowego chartu.",
                ["kubectl", "helm-values"],
            ),
        ],
        "questions": [
            "Czy mogą Państwo pilnie pomóc? To środowisko produkcyjne.",
            "Co powinniśmy sprawdzić?",
            "Czy to znany problem? Proszę o telefon.",
            "Restartowaliśmy już dwa razy, bez zmian.",
        ],
        "signatures": [
            "Pozdrawiam,\nTomasz",
            "Z poważaniem,\nMagdalena Zielińska",
            "Dziękuję,\nPaweł",
        ],
    },
    "ja": {
        "greetings": ["お世話になっております。", "IREXサポート御中", "お疲れ様です。"],
        "problems": [
            (
                "7.4.2へのアップデート後、サーバーが起動して数秒で停止します。",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "毎晩の再インデックス中にアナリティクスのworkerがクラッシュします。",
                ["java-oom", "gc-log"],
            ),
            (
                "サービスアカウントのパスワード変更以降、LDAPで誰もログインできません。",
                ["java-ldap"],
            ),
            ("ディスクが満杯になり、レコーダーの録画が止まりました。", ["df"]),
            ("アップグレード中にスキーマの移行が失敗します。", ["python-tb", "upgrade-cli"]),
        ],
        "questions": [
            "本番環境のため、至急ご確認いただけますでしょうか。",
            "何を確認すればよいか教えてください。",
            "既知の問題でしょうか。",
            "すでに2回再起動しましたが、改善しません。",
        ],
        "signatures": [
            "よろしくお願いいたします。\n鈴木",
            "以上、よろしくお願いします。\n株式会社山田製作所 渡辺",
        ],
    },
    "zh": {
        "greetings": ["您好，", "你好，", "IREX技术支持："],
        "problems": [
            ("升级到7.4.2之后，服务器启动几秒钟就停止了。", ["java-bind", "systemctl", "syslog"]),
            ("每天晚上重建索引的时候，分析worker都会崩溃。", ["java-oom", "gc-log"]),
            ("服务账号改密码以后，所有用户都无法通过LDAP登录。", ["java-ldap"]),
            ("录像节点的磁盘满了，录像停止了。", ["df"]),
            ("升级过程中数据库结构迁移失败。", ["python-tb", "upgrade-cli"]),
        ],
        "questions": [
            "这是生产环境，请尽快帮忙处理。",
            "请问我们应该检查什么？",
            "这是已知问题吗？请给我们回电话。",
            "我们已经重启了两次，还是一样。",
        ],
        "signatures": ["谢谢！\n王芳", "祝好\n李明\n信息技术部"],
    },
    "ru": {
        "greetings": ["Здравствуйте,", "Добрый день,", "Привет,"],
        "problems": [
            (
                "После обновления до 7.4.2 сервер останавливается через несколько секунд после запуска.",
                ["java-bind", "systemctl", "syslog"],
            ),
            (
                "Воркеры аналитики падают каждую ночь во время переиндексации.",
                ["java-oom", "gc-log"],
            ),
            (
                "После смены пароля сервисной учётной записи никто не может войти через LDAP.",
                ["java-ldap"],
            ),
            ("Запись на регистраторе остановилась, потому что диск заполнен.", ["df"]),
            ("Миграция схемы падает во время апгрейда.", ["python-tb", "upgrade-cli"]),
            (
                "Под сервера так и не становится ready после деплоя нового чарта.",
                ["kubectl", "helm-values"],
            ),
        ],
        "questions": [
            "Помогите, пожалуйста, срочно: это продуктивная среда.",
            "Что нам проверить?",
            "Это известная проблема? Перезвоните, пожалуйста.",
            "Мы уже дважды перезапускали, без изменений.",
        ],
        "signatures": [
            "С уважением,\nСергей Кузнецов",
            "Спасибо,\nАлексей",
            "С уважением,\nОльга Смирнова\nОтдел ИТ",
        ],
    },
}

EN_COMPOSED = 110
FOREIGN_COMPOSED = 6  # per language


def load_blocks() -> dict[str, str]:
    blocks: dict[str, str] = {}
    name = ""
    for line in (HERE / "blocks.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("%%% "):
            name = line[4:].split()[0]
            blocks[name] = ""
        else:
            blocks[name] += line + "\n"
    return {k: v.strip("\n") for k, v in blocks.items()}


def _join(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p).strip()


def compose_english(rng: random.Random) -> list[tuple[str, str]]:
    items = []
    scenarios = sorted(EN_SCENARIOS)
    for n in range(1, EN_COMPOSED + 1):
        scenario = scenarios[(n - 1) % len(scenarios)]
        problems, block_ids, questions = EN_SCENARIOS[scenario]
        blocks = rng.sample(block_ids, k=min(len(block_ids), rng.choice([1, 1, 2])))
        problem = rng.choice(problems)
        context = rng.choice(EN_CONTEXT)
        lead = "See the log below:" if rng.random() < 0.5 else ""
        body = _join(
            [rng.choice(EN_GREETINGS), f"{problem} {context}".strip(), lead,
             *(f"{{{{block:{b}}}}}" for b in blocks),
             f"{rng.choice(EN_EXTRA)} {rng.choice(questions)}".strip(),
             rng.choice(EN_SIGNATURES)]
        )  # fmt: skip
        items.append((f"en-c{n:03d} composed {scenario} {'+'.join(blocks)}", body))
    return items


def compose_foreign(lang: str, rng: random.Random) -> list[tuple[str, str]]:
    parts = FOREIGN[lang]
    items = []
    for n in range(1, FOREIGN_COMPOSED + 1):
        problem, block_ids = parts["problems"][(n - 1) % len(parts["problems"])]  # type: ignore[misc]
        block = rng.choice(block_ids)
        body = _join(
            [str(rng.choice(parts["greetings"])), str(problem), f"{{{{block:{block}}}}}",
             str(rng.choice(parts["questions"])), str(rng.choice(parts["signatures"]))]
        )  # fmt: skip
        items.append((f"{lang}-c{n:03d} composed {block}", body))
    return items


def render(items: list[tuple[str, str]]) -> str:
    header = "# Generated by compose.py from hand-written parts. Do not edit by hand.\n"
    return header + "".join(f"%%% {head}\n{body}\n" for head, body in items)


def composed_files() -> dict[str, str]:
    rng = random.Random(20240305)
    files = {"en.composed.txt": render(compose_english(rng))}
    for lang in sorted(FOREIGN):
        files[f"{lang}.composed.txt"] = render(compose_foreign(lang, rng))
    return files


def main() -> None:
    for name, text in composed_files().items():
        (HERE / name).write_text(text, encoding="utf-8")
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
