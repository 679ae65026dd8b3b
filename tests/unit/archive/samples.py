"""Sample lines from ../shared/reference/hyperliquid-archive.md, verbatim (§3.1-§3.4, §3.6).

Lines are long on purpose: they are the reference's bytes, not reformatted.
"""

# §3.1: line 3 of node_fills_by_block/hourly/20250801/0.lz4 (Python's default separators).
FILLS_BY_BLOCK = b'{"local_time": "2025-08-01T00:00:01.013207614", "block_time": "2025-08-01T00:00:00.536482059", "block_number": 681644303, "events": [["0x4622d70c92631f4ae484f82b871f10844e6eeafc", {"coin": "BTC", "px": "115725.0", "sz": "0.00066", "side": "B", "time": 1754006400536, "startPosition": "-113.7036", "dir": "Close Short", "closedPnl": "0.36828", "hash": "0x2d55821847fd207d576f0428a1110f01bb0087b493eb770fc7521e6190bc19c5", "oid": 124534111087, "crossed": true, "fee": "0.021385", "tid": 601180746901427, "cloid": "0x00000000000000000020959447365530", "feeToken": "USDC"}], ["0xabfae5ef417fec83a63dcdbff5a13f71d09045c5", {"coin": "BTC", "px": "115725.0", "sz": "0.00066", "side": "A", "time": 1754006400536, "startPosition": "0.47663", "dir": "Close Long", "closedPnl": "0.095766", "hash": "0x2d55821847fd207d576f0428a1110f01bb0087b493eb770fc7521e6190bc19c5", "oid": 124534041015, "crossed": false, "fee": "-0.001527", "tid": 601180746901427, "cloid": "0x000000000000000000063b426fe177df", "feeToken": "USDC"}]]}'

# §3.2: an event with a builder fee (spot @142, a sale).
BUILDER_EVENT = b'["0xa181aa6c6ad3abef833cffed1b21e5c790c68dbe", {"coin": "@142", "px": "115636.0", "sz": "0.00042", "side": "A", "time": 1754006403447, "startPosition": "0.0004252471", "dir": "Sell", "closedPnl": "-0.03096268", "hash": "0x27282f39ac74861402f70428a1110402061e00d5d6fcfca546875ab19006b496", "oid": 124534117034, "crossed": true, "fee": "0.08120422", "builderFee": "0.04856712", "tid": 485818640250863, "cloid": "0x62baee7262baee7262baee7262baee72", "feeToken": "USDC", "builder": "0x1924b8561eef20e70ede628a296175d358be80e5"}]'

# §3.2: a liquidation fill with twapId null, compact, from a 2026 node (the fill object only).
LIQUIDATION_FILL = b'{"coin":"SOL","px":"72.153","sz":"0.58","side":"A","time":1782636233257,"startPosition":"-162.6","dir":"Open Short","closedPnl":"0.0","hash":"0xdc25d330b40799afdd9f043ebc4c38000060eb164f0ab8817fee7e83730b739a","oid":481702553903,"crossed":false,"fee":"-0.001255","tid":340554939716632,"cloid":"0x00000000000000000000019f08a8bdd8","liquidation":{"liquidatedUser":"0x5ef843ccf26810073ee689a954f6d05f5b48fccb","markPx":"72.149","method":"market"},"feeToken":"USDC","twapId":null}'

# §3.3: one node_fills line.
NODE_FILL = b'["0x5dd1c7815889c3515d5bdc1be4e2df5db0ad8d5b", {"coin": "BTC", "px": "115724.0", "sz": "0.00011", "side": "A", "time": 1754006399998, "startPosition": "0.0509", "dir": "Close Long", "closedPnl": "-0.00011", "hash": "0x4e86be7c1cd9095cdf730428a1110701f000afeba616a3d8e56814e1bfdf2293", "oid": 124534107526, "crossed": true, "fee": "0.005498", "tid": 529138325283768, "feeToken": "USDC"}]'

# §3.4: two node_trades lines, real node output of 2025-06-24.
NODE_TRADES = (
    b'{"coin":"@107","side":"B","time":"2025-06-24T02:56:36.172847427","px":"36.796","sz":"15.0","hash":"0x0f0fd1630a15ee0cfbf704261eaac1018c01021cbd299fd0aab0fc4b47dbfeb5","trade_dir_override":"Na","side_info":[{"user":"0xb65117c1e1006e7b2413fa90e96fcbe3fa83ed75","start_pos":"1438.73242692","oid":105686976228,"twap_id":null,"cloid":null},{"user":"0x91853bcefbdc3447768413e6db7d6e0a81c4be56","start_pos":"1230.04231931","oid":105686976111,"twap_id":null,"cloid":"0x0000000000001371000031839dda1c54"}]}',
    b'{"coin":"ETH","side":"A","time":"2025-06-24T02:56:37.026660548","px":"2391.9","sz":"0.0051","hash":"0x0000000000000000000000000000000000000000000000000000000000000000","trade_dir_override":"Na","side_info":[{"user":"0x31ca8395cf837de08b24da3f660e77761dfb974b","start_pos":"14.2048","oid":105686950111,"twap_id":null,"cloid":null},{"user":"0x937791d5ab5040402370f1fc0d9f8f014d80e90e","start_pos":"-2.6603","oid":105686977630,"twap_id":822427,"cloid":null}]}',
)

# §3.6: a WebSocket trades element: the shape a derived trade has.
WS_TRADE = b'{"coin":"BTC","side":"A","px":"106296.0","sz":"0.00017","time":1751430933565,"hash":"0xde93a8a0729ade63d8840417805ba9010b008818422ddedb1285744426b73503","tid":293353986402527,"users":["0xcc0a3b6e3267c84361e91d8230868eea53431e4b","0xc64cc00b46101bd40aa1c3121195e85c0b0918d8"]}'
