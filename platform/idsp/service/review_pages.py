"""placeholder"""

def routes(prefix, service):
    return []
