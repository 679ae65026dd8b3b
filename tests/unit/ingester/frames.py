"""The exact example frames of reference/hyperliquid-api.md, shared by the ingester tests."""

TRADES = (
    b'{"channel":"trades","data":[\n'
    b'  {"coin":"ETH","side":"B","px":"4321.7","sz":"0.8421","time":1787052617384,\n'
    b'   "hash":"0x3c1f9a0d7e55b21c48a6f0e9d2b7c3a41f0e8d6c5b4a39281706f5e4d3c2b1a0",\n'
    b'   "tid":871204556310942,\n'
    b'   "users":["0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291","0x0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"]},\n'
    b'  {"coin":"ETH","side":"B","px":"4321.9","sz":"0.1579","time":1787052617384,\n'
    b'   "hash":"0x3c1f9a0d7e55b21c48a6f0e9d2b7c3a41f0e8d6c5b4a39281706f5e4d3c2b1a0",\n'
    b'   "tid":318850271946675,\n'
    b'   "users":["0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291","0x7f6e5d4c3b2a190817263544f3e2d1c0b9a89786"]}\n'
    b"]}"
)
ALL_MIDS = b'{"channel":"allMids","data":{"mids":{"BTC":"117342.5","ETH":"4321.85","SOL":"186.415","kPEPE":"0.011042","@107":"44.218","PURR/USDC":"0.18712","#12090":"0.4412"}}}'
ALL_MIDS_DEX = b'{"channel":"allMids","data":{"dex":"xyz","mids":{"xyz:TSLA":"342.61","xyz:NVDA":"181.07","xyz:GOLD":"3391.4"}}}'
ASSET_CTX = b'{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"0.0000125","openInterest":"31877.40218","prevDayPx":"115980.0","dayNtlVlm":"3874512093.4471208","premium":"-0.0002874113","oraclePx":"117371.0","markPx":"117340.0","midPx":"117342.5","impactPxs":["117342.0","117343.0"],"dayBaseVlm":"33190.41775"}}}'
SPOT_CTX = b'{"channel":"activeSpotAssetCtx","data":{"coin":"@107","ctx":{"prevDayPx":"43.512","dayNtlVlm":"61239871.2251","markPx":"44.201","midPx":"44.2185","circulatingSupply":"334612790.1873","coin":"@107","totalSupply":"999837211.4012","dayBaseVlm":"1391204.77"}}}'
USER_FILLS_SNAPSHOT = b"""{"channel":"userFills","data":{"isSnapshot":true,"user":"0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291","fills":[
  {"coin":"ETH","px":"4321.7","sz":"0.8421","side":"B","time":1787052617384,"startPosition":"-0.5","dir":"Short > Long","closedPnl":"-1.41507","hash":"0x3c1f9a0d7e55b21c48a6f0e9d2b7c3a41f0e8d6c5b4a39281706f5e4d3c2b1a0","oid":402918337451,"crossed":true,"fee":"1.637713","tid":871204556310942,"feeToken":"USDC","twapId":null},
  {"coin":"BTC","px":"117120.0","sz":"0.0125","side":"A","time":1787049012771,"startPosition":"0.0125","dir":"Close Long","closedPnl":"3.6125","hash":"0x9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d","oid":402911020533,"crossed":false,"fee":"0.21962","tid":552307719846120,"feeToken":"USDC","builderFee":"0.02928","cloid":"0x00000000000000000000000000a1b2c3","twapId":null}
]}}"""
USER_FILLS_UPDATE = b'{"channel":"userFills","data":{"user":"0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291","fills":[{"coin":"SOL","px":"186.41","sz":"12.5","side":"A","time":1787052701954,"startPosition":"0.0","dir":"Open Short","closedPnl":"0.0","hash":"0x1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809","oid":402920114872,"crossed":false,"fee":"0.349519","tid":1002339875512364,"feeToken":"USDC","twapId":null}]}}'
CLEARINGHOUSE = b"""{"channel":"clearinghouseState","data":{"dex":"","user":"0x5b2e9c0d4a1f8e7b6c3d2a1908f7e6d5c4b3a291","clearinghouseState":{
  "marginSummary":{"accountValue":"25418.331207","totalNtlPos":"5104.7386","totalRawUsd":"27566.108607","totalMarginUsed":"425.70936"},
  "crossMarginSummary":{"accountValue":"25140.469907","totalNtlPos":"1478.4806","totalRawUsd":"23661.989307","totalMarginUsed":"147.84806"},
  "crossMaintenanceMarginUsed":"29.569612",
  "withdrawable":"24992.621847",
  "assetPositions":[
    {"type":"oneWay","position":{"coin":"ETH","szi":"0.3421","entryPx":"4316.58","positionValue":"1478.4806","unrealizedPnl":"1.785762","returnOnEquity":"0.0120928","liquidationPx":null,"leverage":{"type":"cross","value":10},"marginUsed":"147.84806","maxLeverage":25,"cumFunding":{"allTime":"12.904417","sinceOpen":"0.045123","sinceChange":"0.045123"}}},
    {"type":"oneWay","position":{"coin":"SOL","szi":"-19.45","entryPx":"186.12","positionValue":"3626.258","unrealizedPnl":"-6.224","returnOnEquity":"-0.0223512","liquidationPx":"199.4718","leverage":{"type":"isolated","value":13,"rawUsd":"3904.1193"},"marginUsed":"277.8613","maxLeverage":20,"cumFunding":{"allTime":"-3.110284","sinceOpen":"0.0","sinceChange":"0.0"}}}
  ],
  "time":1787052702115}}}"""
ACK_TRADES = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"ETH"}}}'
ACK_L2 = b'{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC","nSigFigs":null,"mantissa":null,"fast":false}}}'
ERROR_ALREADY = b'{"channel":"error","data":"Already subscribed: {\\"type\\":\\"l2Book\\",\\"coin\\":\\"SOL\\",\\"nSigFigs\\":null,\\"mantissa\\":null,\\"fast\\":false}"}'
PONG = b'{"channel":"pong"}'
GREETING = b"Websocket connection established."

ALL_VALID = (
    TRADES, ALL_MIDS, ALL_MIDS_DEX, ASSET_CTX, SPOT_CTX, USER_FILLS_SNAPSHOT, USER_FILLS_UPDATE,
    CLEARINGHOUSE, ACK_TRADES, ACK_L2, ERROR_ALREADY, PONG,
)  # fmt: skip
