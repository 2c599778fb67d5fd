"""Word lists shared by the generators (written by us)."""

FIRST = ["Maya", "Omar", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Tomas", "Ines", "Felix",
         "Noor", "Hugo", "Priya", "Mateo", "Yara", "Jonas", "Chloe", "Arjun", "Elena", "Kwame",
         "Zoe", "Ivan", "Leila", "Marco", "Hana", "Diego", "Freya", "Samir", "Alma", "Theo"]
LAST = ["Haddad", "Novak", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Costa", "Weber",
        "Ramirez", "Kowalski", "Nguyen", "Fischer", "Silva", "Dubois", "Rossi", "Jensen",
        "Petrov", "Mendes", "Kaur", "Brennan"]
CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Krakow", "Porto", "Quito", "Tunis",
          "Gdansk", "Leeds", "Austin", "Dublin", "Seville", "Osaka", "Bergen", "Accra",
          "Tbilisi", "Valencia", "Montreal"]
OBJECTS = ["marbles", "stickers", "apples", "coins", "books", "stamps", "pencils", "shells",
           "cards", "buttons", "candles", "cookies"]
