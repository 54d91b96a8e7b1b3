"""Entity root fields (``person``, ``people``, ``peopleCount``): one person merged across departments."""
